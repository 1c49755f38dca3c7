"""The RESP port as a front end: Redis commands in, Redis replies out,
through the command core (see olivia.protocols.frontend for the contract).

Each Redis command is one entry of :data:`COMMANDS`: its arity, whether it
writes, and a handler that translates its arguments into the items of a
core verb (``GET`` → the core's GET, ``SET k v EX 5`` → SETEX, ``DBSIZE`` →
COUNT...), runs it through the registry, and writes the result as the reply
type Redis sends.  What a verb means stays in the core: the handlers only
parse, call and write.  The few Redis options with no core verb of their own
(``SET`` with ``XX``, ``KEEPTTL`` or ``GET``, ``NX`` with a TTL) are two core
requests in a row, not atomic together: docs/resp.md says so.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from olivia import __version__
from olivia.core.errors import (
    BadItemError,
    KeyTooLongError,
    NoAuthError,
    ProtocolError,
    WrongPassError,
)
from olivia.core.glob import matches
from olivia.core.keyspace import Keyspace
from olivia.core.registry import HOLDS_ALL, Registry
from olivia.core.requests import (
    MAX_KEY_BYTES,
    MAX_TTL_SECONDS,
    Found,
    KeyList,
    KeyTtl,
    Rename,
    ScanArgs,
    ScanPage,
    TtlItem,
    Ttls,
)
from olivia.core.session import Guard, Session
from olivia.core.values import HEADER_BYTES
from olivia.observe.latency import TIME_EVERY
from olivia.observe.stats import Stats
from olivia.protocols.frontend import (
    BLOCKED,
    INTERNAL_ERROR,
    Final,
    Pending,
    is_loopback,
    result_of,
    timed,
)
from olivia.protocols.line.escaping import show
from olivia.protocols.resp.fastpath import RespFastPath
from olivia.protocols.resp.framing import RespFramer
from olivia.protocols.resp.info import info_text
from olivia.protocols.resp.replies import OK, Encoder, bulk, error, error_of, integer, simple

log = logging.getLogger(__name__)

#: The Redis version whose commands and replies the port follows.
REDIS_COMPATIBILITY = "7.0.0"
NOT_INTEGER = "value is not an integer or out of range"
_client_ids = itertools.count(1)

Reply = Any  # bytes, Pending, Final
Handler = Callable[["RespFrontEnd", list[bytes]], Reply]


@dataclass(frozen=True, slots=True)
class RespCommand:
    """One Redis command the port takes: ``arity`` as Redis writes it
    (negative: at least that many words, the name included)."""

    name: str
    arity: int
    handler: Handler
    writes: bool = True
    before_auth: bool = False  # allowed before AUTH (AUTH, HELLO, QUIT)
    summary: str = ""


class RespProtocol:
    """The RESP port of one node: shared by all its RESP connections."""

    def __init__(self, registry: Registry, keyspace: Keyspace, stats: Stats, guard: Guard,
                 max_bulk_bytes: int, info: Callable[[], Sequence[tuple[str, str]]],
                 volatile_keys: Callable[[], int],
                 config_values: Callable[[], dict[bytes, bytes]] | None = None) -> None:
        self.registry = registry
        self.keyspace = keyspace
        self.fast = RespFastPath(keyspace)
        self.config_values = config_values or dict
        self.stats = stats
        self.guard = guard
        self.max_bulk_bytes = max_bulk_bytes
        self.info = info
        self.volatile_keys = volatile_keys
        self.port = 0  # set once bound (INFO's tcp_port)

    def connection(self, peer: str = "?", tls_verified: bool = False) -> RespFrontEnd:
        return RespFrontEnd(self, self.guard.session(peer, is_loopback(peer), tls_verified))


_NO_FAST: dict[bytes, Any] = {}


class RespFrontEnd:
    """One RESP connection."""

    def __init__(self, protocol: RespProtocol, session: Session) -> None:
        self.protocol = protocol
        self.session = session
        self.framer = RespFramer(protocol.max_bulk_bytes)
        self.encoder = Encoder(2)
        self.client_id = next(_client_ids)
        self.client_name: bytes | None = None
        self._registry = protocol.registry
        self._calls = protocol.stats.calls
        self._latencies = protocol.stats.latencies
        self._reads_until_timed = 1  # a connection's first read is timed
        self._keyspace = protocol.keyspace
        # Until the connection may use every command (AUTH, protected mode),
        # every command takes the general path, which checks it.
        self._fast_get = (protocol.fast.handlers if session.trusted else _NO_FAST).get
        self._fast_read = protocol.fast.get

    # -- FrontEnd -----------------------------------------------------------------

    def run(self, frames: list[list[bytes]], index: int, budget: int, reads_only: bool,
            out: Callable[[bytes], object]) -> tuple[int, int, Any]:
        """The hot loop (olivia.protocols.frontend.FrontEnd.run), kept flat as
        the line protocol's: a frame goes to the fast path if its command has
        a handler there (only GET while earlier replies wait), else, or if
        the fast path declines it, to the general path (execute)."""
        fast_get = self._fast_get
        resp3 = self.encoder.version == 3
        end = len(frames)
        fast = 0
        reply: Any = None
        # One read in TIME_EVERY has its first request timed (olivia.observe.latency).
        timing = self._reads_until_timed == 1
        self._reads_until_timed = TIME_EVERY if timing else self._reads_until_timed - 1
        while index < end and budget > 0:
            frame = frames[index]
            handler = fast_get(frame[0])
            reply = None
            if handler is not None and (not reads_only or handler == self._fast_read):
                try:
                    if not timing:
                        reply = handler(frame, resp3)
                    else:
                        timing = False
                        began = time.perf_counter()
                        reply = handler(frame, resp3)
                        timed(self._latencies, "resp", frame[0].upper().decode(), began, reply)
                except ProtocolError as exc:
                    reply = error_of(exc)
                if reply is not None:
                    fast += 1
            if reply is None:
                reply = self.execute(frame, reads_only, timing)
                timing = False
            if type(reply) is bytes:
                index += 1
                out(reply)
                budget -= len(reply)
                continue
            if reply is not BLOCKED:
                index += 1
            break
        else:
            reply = None
        self.protocol.stats.total_commands += fast
        self._keyspace.end_batch()
        return index, budget, reply

    def execute(self, frame: list[bytes], reads_only: bool, timing: bool = False) -> Reply:
        name = frame[0].upper().decode("ascii", "replace")
        command = COMMANDS.get(name)
        if command is None:
            return _unknown(frame)
        if (command.arity > 0 and len(frame) != command.arity) or len(frame) < -command.arity:
            return error(f"ERR wrong number of arguments for '{name.lower()}' command")
        if reads_only and command.writes:
            return BLOCKED
        self.protocol.stats.total_commands += 1
        try:
            if not command.before_auth:
                self.protocol.guard.check(self.session, name, False)
                if not timing:
                    return command.handler(self, frame[1:])
                began = time.perf_counter()
                outcome = command.handler(self, frame[1:])
                timed(self._latencies, "resp", name, began, outcome)
                return outcome
            reply = command.handler(self, frame[1:])
            if self.session.trusted:
                self._fast_get = self.protocol.fast.handlers.get
            return reply
        except ProtocolError as exc:
            return Final(error_of(exc)) if exc.closes else error_of(exc)
        except Exception as exc:  # a bug must cost one request, not the node
            log.error("internal error on RESP %s from %s: %r", name, self.session.where, exc)
            return error("ERR " + INTERNAL_ERROR)

    def overflow_reply(self) -> bytes:
        return error(f"ERR Protocol error: {self.framer.error}")

    # -- running core verbs -----------------------------------------------------------

    def core(self, verb: str, items: Any) -> Any:
        """The outcome of core verb ``verb`` on ``items``: a result or a future."""
        spec = self._registry.get(verb)
        assert spec is not None, verb
        self._calls[verb] += 1
        return spec.handler(items, self.session) if spec.session else spec.handler(items)

    def reply(self, verb: str, items: Any, finish: Callable[[Any], bytes]) -> Reply:
        """Run a core verb and write its result with ``finish``."""
        outcome = self.core(verb, items)
        if isinstance(outcome, asyncio.Future):
            spec = self._registry.get(verb)
            holds = spec.holds if spec is not None else HOLDS_ALL
            return Pending(outcome, lambda future: self._finished(future, finish), holds)
        return finish(outcome)

    def steps(self, coroutine: Awaitable[bytes]) -> Pending:
        """A reply made of several core requests in a row (a coroutine of bytes)."""
        return Pending(asyncio.ensure_future(coroutine), self._bytes_of, HOLDS_ALL)

    async def result(self, verb: str, items: Any) -> Any:
        outcome = self.core(verb, items)
        return await outcome if isinstance(outcome, Awaitable) else outcome

    def _finished(self, future: asyncio.Future[Any], finish: Callable[[Any], bytes]) -> bytes:
        try:
            return finish(result_of(future))
        except ProtocolError as exc:
            return Final(error_of(exc)) if exc.closes else error_of(exc)

    def _bytes_of(self, future: asyncio.Future[Any]) -> bytes:
        try:
            reply: bytes = result_of(future)
        except ProtocolError as exc:
            return Final(error_of(exc)) if exc.closes else error_of(exc)
        return reply


def _unknown(frame: list[bytes]) -> bytes:
    args = " ".join(f"'{show(arg)[1:-1]}'" for arg in frame[1:4])
    return error(f"ERR unknown command '{frame[0].decode('utf-8', 'replace')}', with args "
                 f"beginning with: {args}")


# -- argument parsing ---------------------------------------------------------------


def key_of(command: str, key: bytes) -> bytes:
    if not key:
        raise BadItemError(f"empty key in {command}: Olivia keys are 1 to {MAX_KEY_BYTES} bytes")
    if len(key) > MAX_KEY_BYTES:
        raise KeyTooLongError(f"key too long in {command}: {len(key)} bytes (limit "
                              f"{MAX_KEY_BYTES})")
    return key


def integer_of(text: bytes) -> int:
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is None or not text.strip() or not -(1 << 63) <= number < (1 << 63):
        raise _RedisError(NOT_INTEGER)
    return number


class _RedisError(ProtocolError):
    """An error worded as Redis words it (``-ERR <message>``)."""


def _ttl_item(command: str, key: bytes, value: bytes, seconds: float) -> TtlItem:
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TTL_SECONDS):
        raise _RedisError(f"invalid expire time in '{command.lower()}' command")
    return TtlItem.of(key, value, seconds)


# -- the commands ----------------------------------------------------------------------


def _ping(front: RespFrontEnd, args: list[bytes]) -> Reply:
    if len(args) > 1:
        return error("ERR wrong number of arguments for 'ping' command")
    return front.reply("PING", args[0] if args else b"",
                       lambda text: bulk(text.text) if args else simple(b"PONG"))


def _echo(front: RespFrontEnd, args: list[bytes]) -> Reply:
    return front.reply("PING", args[0], lambda text: bulk(text.text))


def _quit(front: RespFrontEnd, args: list[bytes]) -> Reply:
    return Final(OK)


def _auth(front: RespFrontEnd, args: list[bytes]) -> Reply:
    if len(args) == 2 and args[0] != b"default":
        raise WrongPassError("invalid username-password pair or user is disabled.")
    return front.reply("AUTH", args[-1], lambda _: OK)


def _hello(front: RespFrontEnd, args: list[bytes]) -> Reply:
    version = front.encoder.version
    rest = args
    if rest:
        try:
            version = int(rest[0])
        except ValueError:
            raise _RedisError("Protocol version is not an integer or out of range") from None
        if version not in (2, 3):
            return error("NOPROTO unsupported protocol version")
        rest = rest[1:]
    while rest:
        option = rest[0].upper()
        if option == b"AUTH" and len(rest) >= 3:
            _auth(front, [rest[1], rest[2]])
            rest = rest[3:]
        elif option == b"SETNAME" and len(rest) >= 2:
            front.client_name = rest[1]
            rest = rest[2:]
        else:
            return error(f"ERR Syntax error in HELLO option '{rest[0].decode('utf-8', 'replace')}'")
    if not front.session.trusted:
        raise NoAuthError("HELLO must be called with the client already authenticated, "
                          "otherwise the HELLO <proto> AUTH <user> <pass> option can be used")
    front.protocol.guard.check(front.session, "HELLO", False)
    front.encoder = Encoder(version)
    encoder = front.encoder
    return encoder.mapping([
        (b"server", bulk(b"redis")), (b"version", bulk(REDIS_COMPATIBILITY.encode())),
        (b"olivia_version", bulk(__version__.encode())), (b"proto", integer(version)),
        (b"id", integer(front.client_id)), (b"mode", bulk(b"standalone")),
        (b"role", bulk(b"master")), (b"modules", encoder.array([])),
    ])


def _select(front: RespFrontEnd, args: list[bytes]) -> Reply:
    if args[0] != b"0":
        return error("ERR DB index is out of range")
    return OK


def _client(front: RespFrontEnd, args: list[bytes]) -> Reply:
    sub = args[0].upper()
    if sub == b"SETNAME" and len(args) == 2:
        front.client_name = args[1] or None
        return OK
    if sub == b"GETNAME" and len(args) == 1:
        return front.encoder.bulk_or_nil(front.client_name)
    if sub == b"ID" and len(args) == 1:
        return integer(front.client_id)
    if sub == b"SETINFO" and len(args) == 3:
        return OK
    return error(f"ERR unknown subcommand '{args[0].decode('utf-8', 'replace')}'. Try CLIENT HELP.")


def _command(front: RespFrontEnd, args: list[bytes]) -> Reply:
    encoder = front.encoder
    sub = args[0].upper() if args else b""
    if sub == b"COUNT":
        return integer(len(COMMANDS))
    if sub == b"DOCS":
        wanted = [COMMANDS[name] for name in _names(args[1:])] if args[1:] else list(
            COMMANDS.values())
        return encoder.mapping([(c.name.lower().encode(), _doc(encoder, c)) for c in wanted])
    if sub == b"INFO":
        asked = [COMMANDS.get(arg.upper().decode("ascii", "replace")) for arg in args[1:]]
        return encoder.array([_info(encoder, c) if c is not None else encoder.nil
                              for c in asked])
    if not args:
        return encoder.array([_info(encoder, c) for c in COMMANDS.values()])
    return error(f"ERR unknown subcommand '{args[0].decode('utf-8', 'replace')}'. "
                 "Try COMMAND HELP.")


def _names(args: list[bytes]) -> list[str]:
    return [name for name in (arg.upper().decode("ascii", "replace") for arg in args)
            if name in COMMANDS]


def _info(encoder: Encoder, command: RespCommand) -> bytes:
    flags = [simple(b"write") if command.writes else simple(b"readonly")]
    first_key = 1 if command.name in _KEYED else 0
    last_key = -1 if command.name in _MULTI_KEY else first_key
    return encoder.array([bulk(command.name.lower().encode()), integer(command.arity),
                          encoder.array(flags), integer(first_key), integer(last_key),
                          integer(1 if first_key else 0), encoder.array([]),
                          encoder.array([]), encoder.array([]), encoder.array([])])


def _doc(encoder: Encoder, command: RespCommand) -> bytes:
    return encoder.mapping([(b"summary", bulk(command.summary.encode())),
                            (b"since", bulk(b"1.0.0")), (b"group", bulk(b"generic"))])


def _config(front: RespFrontEnd, args: list[bytes]) -> Reply:
    """CONFIG GET of the few parameters tools read (redis-benchmark asks for
    save and appendonly): the node's own settings under Redis's names."""
    if args[0].upper() != b"GET" or len(args) < 2:
        return error("ERR Olivia's CONFIG takes GET only (settings live in config.toml)")
    values = front.protocol.config_values()
    pairs = [(name, bulk(values[name])) for pattern in args[1:] for name in values
             if matches(pattern.lower(), name)]
    return front.encoder.mapping(pairs)


def _info_command(front: RespFrontEnd, args: list[bytes]) -> Reply:
    sections = [arg.decode("ascii", "replace").lower() for arg in args]
    protocol = front.protocol
    text = info_text(protocol.info(), sections, protocol.port, protocol.volatile_keys(),
                     REDIS_COMPATIBILITY)
    return bulk(text.encode())


def _dbsize(front: RespFrontEnd, args: list[bytes]) -> Reply:
    return front.reply("COUNT", None, lambda count: integer(count.count))


def _get(front: RespFrontEnd, args: list[bytes]) -> Reply:
    key = key_of("GET", args[0])
    return front.reply("GET", (key,), lambda found: _first_value(front, found))


def _first_value(front: RespFrontEnd, found: Found) -> bytes:
    return bulk(found.pairs[0][1][HEADER_BYTES:]) if found.pairs else front.encoder.nil


def _mget(front: RespFrontEnd, args: list[bytes]) -> Reply:
    keys = tuple(key_of("MGET", key) for key in args)

    def finish(found: Found) -> bytes:
        values = {key: stored[HEADER_BYTES:] for key, stored in found.pairs}
        return front.encoder.bulks(values.get(key) for key in keys)

    return front.reply("GET", keys, finish)


def _set(front: RespFrontEnd, args: list[bytes]) -> Reply:
    key, value = key_of("SET", args[0]), args[1]
    options = _SetOptions.parse(args[2:])
    if not (options.nx or options.xx or options.get or options.keep_ttl):
        if options.ttl is None:
            return front.reply("SET", ((key, value),), lambda _: OK)
        item = _ttl_item("SET", key, value, options.ttl)
        return front.reply("SETEX", (item,), lambda _: OK)
    if options.nx and not options.get and options.ttl is None:
        return front.reply("SETNX", ((key, value),),
                           lambda listed: OK if listed.keys else front.encoder.nil)
    return front.steps(_set_in_steps(front, key, value, options))


@dataclass
class _SetOptions:
    ttl: float | None = None
    nx: bool = False
    xx: bool = False
    get: bool = False
    keep_ttl: bool = False

    @classmethod
    def parse(cls, words: list[bytes]) -> _SetOptions:
        options = cls()
        index = 0
        while index < len(words):
            word = words[index].upper()
            if word in (b"EX", b"PX", b"EXAT", b"PXAT") and index + 1 < len(words) \
                    and options.ttl is None and not options.keep_ttl:
                number = integer_of(words[index + 1])
                if number <= 0:
                    raise _RedisError("invalid expire time in 'set' command")
                options.ttl = _seconds(word, number)
                index += 2
                continue
            if word == b"NX" and not options.xx:
                options.nx = True
            elif word == b"XX" and not options.nx:
                options.xx = True
            elif word == b"GET":
                options.get = True
            elif word == b"KEEPTTL" and options.ttl is None:
                options.keep_ttl = True
            else:
                raise _RedisError("syntax error")
            index += 1
        return options


def _seconds(unit: bytes, number: int) -> float:
    if unit == b"EX":
        return float(number)
    if unit == b"PX":
        return number / 1000
    now = time.time()
    seconds = number - now if unit == b"EXAT" else number / 1000 - now
    if seconds <= 0:
        return 0.001  # already past: gone at once, as Redis deletes it
    return seconds


async def _set_in_steps(front: RespFrontEnd, key: bytes, value: bytes,
                        options: _SetOptions) -> bytes:
    """SET with options the core has no single verb for, in core steps."""
    old: bytes | None = None
    exists: bool | None = None
    if options.get:
        found: Found = await front.result("GET", (key,))
        old = found.pairs[0][1][HEADER_BYTES:] if found.pairs else None
        exists = old is not None
    ttl = options.ttl
    if options.keep_ttl:
        ttls: Ttls = await front.result("TTL", (key,))
        ttl = ttls.pairs[0][1] if ttls.pairs else None
        exists = bool(ttls.pairs)
    written = True
    if options.nx:
        listed: KeyList = await front.result("SETNX", ((key, value),))
        written = bool(listed.keys)
        if written and ttl is not None:
            await front.result("EXPIRE", (KeyTtl(key, ttl, TtlItem.of(key, b"", ttl).ttl_text),))
    else:
        if options.xx and exists is None:
            present: KeyList = await front.result("EXISTS", (key,))
            exists = bool(present.keys)
        if options.xx and not exists:
            written = False
        elif ttl is None:
            await front.result("SET", ((key, value),))
        else:
            await front.result("SETEX", (_ttl_item("SET", key, value, ttl),))
    if options.get:
        return front.encoder.bulk_or_nil(old)
    return OK if written else front.encoder.nil


def _setex(front: RespFrontEnd, args: list[bytes], scale: float, name: str) -> Reply:
    key = key_of(name, args[0])
    number = integer_of(args[1])
    item = _ttl_item(name, key, args[2], number * scale if number > 0 else 0.0)
    return front.reply("SETEX", (item,), lambda _: OK)


def _setnx(front: RespFrontEnd, args: list[bytes]) -> Reply:
    key = key_of("SETNX", args[0])
    return front.reply("SETNX", ((key, args[1]),), lambda listed: integer(len(listed.keys)))


def _mset(front: RespFrontEnd, args: list[bytes]) -> Reply:
    if len(args) % 2:
        return error("ERR wrong number of arguments for 'mset' command")
    pairs = tuple((key_of("MSET", args[i]), args[i + 1]) for i in range(0, len(args), 2))
    return front.reply("SET", pairs, lambda _: OK)


def _del(front: RespFrontEnd, args: list[bytes]) -> Reply:
    keys = tuple(key_of("DEL", key) for key in args)
    return front.reply("DEL", keys, lambda listed: integer(len(listed.keys)))


def _exists(front: RespFrontEnd, args: list[bytes]) -> Reply:
    keys = tuple(key_of("EXISTS", key) for key in args)

    def finish(listed: KeyList) -> bytes:
        present = set(listed.keys)
        return integer(sum(key in present for key in keys))

    return front.reply("EXISTS", keys, finish)


def _incr_by(front: RespFrontEnd, key: bytes, amount: int) -> Reply:
    return front.reply("INCR", ((key_of("INCR", key), amount),),
                       lambda numbers: integer(numbers.pairs[0][1]))


def _getdel(front: RespFrontEnd, args: list[bytes]) -> Reply:
    key = key_of("GETDEL", args[0])
    return front.reply("GETDEL", (key,), lambda values: front.encoder.bulk_or_nil(
        values.pairs[0][1] if values.pairs else None))


def _rename(front: RespFrontEnd, args: list[bytes]) -> Reply:
    rename = Rename(key_of("RENAME", args[0]), key_of("RENAME", args[1]))
    return front.reply("RENAME", rename, lambda _: OK)


def _expire(front: RespFrontEnd, args: list[bytes], scale: float) -> Reply:
    if len(args) > 2:
        return error("ERR Olivia's EXPIRE takes no NX, XX, GT or LT option")
    key = key_of("EXPIRE", args[0])
    seconds = integer_of(args[1]) * scale
    if seconds <= 0:  # as Redis: the key is deleted
        return front.reply("DEL", (key,), lambda listed: integer(len(listed.keys)))
    item = TtlItem.of(key, b"", min(seconds, MAX_TTL_SECONDS))
    return front.reply("EXPIRE", (KeyTtl(key, item.ttl, item.ttl_text),),
                       lambda expiries: integer(len(expiries.items)))


def _ttl(front: RespFrontEnd, args: list[bytes], scale: float) -> Reply:
    key = key_of("TTL", args[0])

    def finish(ttls: Ttls) -> bytes:
        if not ttls.pairs:
            return integer(-2)
        seconds = ttls.pairs[0][1]
        return integer(-1 if seconds is None else round(seconds * scale))

    return front.reply("TTL", (key,), finish)


def _persist(front: RespFrontEnd, args: list[bytes]) -> Reply:
    key = key_of("PERSIST", args[0])
    return front.reply("PERSIST", (key,), lambda listed: integer(len(listed.keys)))


def _keys(front: RespFrontEnd, args: list[bytes]) -> Reply:
    return front.reply("KEYS", args[0], lambda listed: front.encoder.bulks(listed.keys))


def _scan(front: RespFrontEnd, args: list[bytes]) -> Reply:
    cursor, pattern, count, wrong_type = args[0], b"*", 100, False
    index = 1
    while index < len(args):
        option = args[index].upper()
        if index + 1 >= len(args):
            raise _RedisError("syntax error")
        if option == b"MATCH":
            pattern = args[index + 1]
        elif option == b"COUNT":
            count = integer_of(args[index + 1])
            if count < 1:
                raise _RedisError("syntax error")
            count = min(count, 1_000_000)
        elif option == b"TYPE":
            wrong_type = args[index + 1].lower() != b"string"  # every value is a string
        else:
            raise _RedisError("syntax error")
        index += 2

    def finish(page: ScanPage) -> bytes:
        keys = () if wrong_type else page.keys
        return front.encoder.array([bulk(page.cursor), front.encoder.bulks(keys)])

    return front.reply("SCAN", ScanArgs(cursor, count, pattern), finish)


def _entry(name: str, arity: int, handler: Handler, summary: str, writes: bool = True,
           before_auth: bool = False) -> tuple[str, RespCommand]:
    return name, RespCommand(name, arity, handler, writes, before_auth, summary)


#: Every command the RESP port takes, by upper-case name.
COMMANDS: dict[str, RespCommand] = dict([
    _entry("PING", -1, _ping, "PONG, or the message given", writes=False),
    _entry("ECHO", 2, _echo, "the message given", writes=False),
    _entry("QUIT", 1, _quit, "close the connection", before_auth=True),
    _entry("AUTH", -2, _auth, "authenticate the connection", before_auth=True),
    _entry("HELLO", -1, _hello, "choose RESP2 or RESP3, authenticate, name the connection",
           before_auth=True),
    _entry("SELECT", 2, _select, "only database 0 exists"),
    _entry("CLIENT", -2, _client, "SETNAME, GETNAME, ID, SETINFO", writes=False),
    _entry("COMMAND", -1, _command, "the commands of this port (COUNT, DOCS, INFO)",
           writes=False),
    _entry("CONFIG", -3, _config, "GET of save, appendonly, maxmemory, ... (read only)",
           writes=False),
    _entry("INFO", -1, _info_command, "the node's fields, in Redis's sections", writes=False),
    _entry("DBSIZE", 1, _dbsize, "the live keys of the whole cluster", writes=False),
    _entry("GET", 2, _get, "the value of a key", writes=False),
    _entry("MGET", -2, _mget, "the values of keys", writes=False),
    _entry("SET", -3, _set, "store a value (EX, PX, EXAT, PXAT, NX, XX, KEEPTTL, GET)"),
    _entry("SETEX", 4, lambda f, a: _setex(f, a, 1.0, "SETEX"), "store with a TTL in seconds"),
    _entry("PSETEX", 4, lambda f, a: _setex(f, a, 0.001, "PSETEX"),
           "store with a TTL in milliseconds"),
    _entry("SETNX", 3, _setnx, "store if the key exists nowhere"),
    _entry("MSET", -3, _mset, "store many values"),
    _entry("DEL", -2, _del, "delete keys"),
    _entry("UNLINK", -2, _del, "delete keys"),
    _entry("EXISTS", -2, _exists, "how many of the keys exist", writes=False),
    _entry("INCR", 2, lambda f, a: _incr_by(f, a[0], 1), "add 1, atomically"),
    _entry("INCRBY", 3, lambda f, a: _incr_by(f, a[0], integer_of(a[1])), "add n, atomically"),
    _entry("DECR", 2, lambda f, a: _incr_by(f, a[0], -1), "subtract 1, atomically"),
    _entry("DECRBY", 3, lambda f, a: _incr_by(f, a[0], -integer_of(a[1])),
           "subtract n, atomically"),
    _entry("GETDEL", 2, _getdel, "the value, and delete the key"),
    _entry("RENAME", 3, _rename, "move a value and its TTL"),
    _entry("EXPIRE", -3, lambda f, a: _expire(f, a, 1.0), "set a TTL in seconds"),
    _entry("PEXPIRE", -3, lambda f, a: _expire(f, a, 0.001), "set a TTL in milliseconds"),
    _entry("TTL", 2, lambda f, a: _ttl(f, a, 1.0), "seconds left", writes=False),
    _entry("PTTL", 2, lambda f, a: _ttl(f, a, 1000.0), "milliseconds left", writes=False),
    _entry("PERSIST", 2, _persist, "remove the TTL"),
    _entry("KEYS", 2, _keys, "every key of the cluster matching a glob", writes=False),
    _entry("SCAN", -2, _scan, "iterate over the keys of the cluster (MATCH, COUNT, TYPE)",
           writes=False),
])
_KEYED = frozenset({"GET", "MGET", "SET", "SETEX", "PSETEX", "SETNX", "MSET", "DEL", "UNLINK",
                    "EXISTS", "INCR", "INCRBY", "DECR", "DECRBY", "GETDEL", "RENAME", "EXPIRE",
                    "PEXPIRE", "TTL", "PTTL", "PERSIST"})
_MULTI_KEY = frozenset({"MGET", "MSET", "DEL", "UNLINK", "EXISTS", "RENAME"})
