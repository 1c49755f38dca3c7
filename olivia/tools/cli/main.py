"""``olivia-cli``: talk to an Olivia node from a shell, as redis-cli does.

::

    olivia-cli [-h HOST] [-p PORT]                  interactive prompt (raw protocol lines)
    olivia-cli [-h HOST] [-p PORT] VERB ARGS...     one request, print its reply
    olivia-cli --pipe < FILE                        stream raw protocol lines, count replies
    olivia-cli --stat | --latency                   watch a node
    olivia-cli import FILE [--format csv|jsonl|json]
    olivia-cli export [--format csv|jsonl|json] (--keys-from FILE | KEY...) > FILE

This module reads the command line and hands over to the module of each
job; see docs/client.md.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Sequence

from olivia import __version__
from olivia.client import DEFAULT_HOST, DEFAULT_PORT, Client
from olivia.core.errors import OliviaError
from olivia.tools.cli.errors import PROG, CliError, fail
from olivia.tools.cli.import_readers import FORMATS
from olivia.tools.cli.monitor import (
    FOREVER,
    LATENCY_INTERVAL,
    STAT_INTERVAL,
    Schedule,
    run_command,
    run_latency,
    run_stat,
)
from olivia.tools.cli.output import ReplyPrinter, default_mode
from olivia.tools.cli.pipe import run_pipe
from olivia.tools.cli.prompt import HISTORY_FILE, run_interactive
from olivia.tools.cli.request_lines import one_shot_line
from olivia.tools.cli.transfers import run_export, run_import, run_scan
from olivia.tools.cli.verb_help import help_text

USAGE = f"""\
{PROG} [-h HOST] [-p PORT] [-a PASSWORD] [--tls [--cacert FILE]] [-t SECONDS]
                  [--raw | --no-raw | --wire]
                  [-r N] [-i SECONDS] [VERB ARGS... | --pipe | --stat | --latency |
                   --scan [--pattern GLOB]]
       {PROG} [-h HOST] [-p PORT] import FILE [--format csv|jsonl|json]
       {PROG} [-h HOST] [-p PORT] export [--format F] [--pattern GLOB | --keys-from FILE |
                                                 KEY...]"""

DESCRIPTION = f"""\
With no VERB, an interactive prompt: each line typed is sent as a raw
protocol line (history in {HISTORY_FILE}; 'help' and Tab show the verbs).
With a VERB, one request: the arguments of a verb that takes items (SET,
SETEX, GET, DEL) are joined with ',' (GET a b asks for two keys), other
verbs' with spaces; the exit status is 1 for an ERR reply. 'help [VERB]'
prints the verbs.

At a terminal replies are decoded for reading; otherwise each reply line is
printed exactly as the server sent it.

  --pipe            send raw protocol lines from stdin as fast as possible and
                    count the replies (like redis-cli --pipe)
  --stat            a line per interval: keys, memory, clients, peers, ops/s
  --latency         min, avg and max of PING round trips in ms
  --scan            every key of the cluster, one a line (like redis-cli
                    --scan); --pattern GLOB for the matching ones only
  import FILE       load key/value pairs from FILE ('-' for stdin): CSV rows
                    key,value[,ttl] (a first row 'key,value[,ttl]' is a header
                    and skipped), JSON lines {{"key": ..., "value": ...}}
                    ("value_b64" and "key_b64" for binary, "ttl" in seconds),
                    or one JSON object {{"key": "value"}}
  export            write every key of the cluster (by SCAN; --pattern GLOB for
                    some), or the keys named (KEY arguments, or --keys-from FILE
                    in any import format or one key per line), with values and
                    TTLs, to stdout in a format import reads

options:
  -h, --host HOST   server host (default $OLIVIA_HOST or {DEFAULT_HOST})
  -p, --port PORT   server port (default $OLIVIA_PORT or {DEFAULT_PORT})
  -t, --timeout S   seconds to wait for the server (default 10; 0 waits forever)
  --raw             print decoded values, one a line (a GET: each value found)
  --no-raw          decode replies for reading even when stdout is not a terminal
  --wire            print reply lines as the server sent them, even at a terminal
  -a PASSWORD       send AUTH PASSWORD first (default $OLIVIA_PASSWORD; the
                    variable keeps it out of ps and shell history)
  --tls             connect over TLS, verifying the server's certificate
  --cacert FILE     the CA (PEM) that signed the server's certificate (implies
                    --tls; default: the system's CAs)
  --insecure        over TLS, do not verify the server's certificate
  -r N              run the VERB N times (-1: until Ctrl-C); with --stat and
                    --latency, N lines or samples (default: until Ctrl-C)
  -i SECONDS        wait between runs (default 0; --stat 1, --latency 0.01)
  --help            show this help and exit
  --version         show the version and exit"""


def _repeat_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if count != FOREVER and count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, or -1 for ever, not {count}")
    return count


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, usage=USAGE, description=DESCRIPTION, add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    hidden = argparse.SUPPRESS  # DESCRIPTION lists the options, grouped by job
    parser.add_argument("-h", "--host", default=os.environ.get("OLIVIA_HOST") or DEFAULT_HOST,
                        help=hidden)
    parser.add_argument("-p", "--port", type=int, default=None, help=hidden)
    parser.add_argument("-t", "--timeout", type=float, default=10.0, help=hidden)
    parser.add_argument("-a", dest="password", default=os.environ.get("OLIVIA_PASSWORD") or None,
                        help=hidden)
    parser.add_argument("--tls", action="store_true", help=hidden)
    parser.add_argument("--cacert", metavar="FILE", help=hidden)
    parser.add_argument("--insecure", action="store_true", help=hidden)
    parser.add_argument("-r", dest="repeat", type=_repeat_count, default=None, help=hidden)
    parser.add_argument("-i", dest="interval", type=_seconds, default=None, help=hidden)
    mode = parser.add_mutually_exclusive_group()
    for flag, name in (("--raw", "raw"), ("--no-raw", "human"), ("--wire", "wire")):
        mode.add_argument(flag, dest="mode", action="store_const", const=name, help=hidden)
    job = parser.add_mutually_exclusive_group()
    for flag in ("--pipe", "--stat", "--latency", "--scan"):
        job.add_argument(flag, action="store_true", help=hidden)
    parser.add_argument("--pattern", default=None, help=hidden)
    parser.add_argument("--help", action="help", help=hidden)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                        help=hidden)
    parser.add_argument("words", nargs=argparse.REMAINDER, help=hidden)
    return parser


def _import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{PROG} import",
                                     description="Load key/value pairs from a file.")
    parser.add_argument("file", help="the file to load, '-' for stdin")
    parser.add_argument("--format", choices=FORMATS,
                        help="csv, jsonl or json (default: from the file's extension)")
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} export",
        description="Write the values of the given keys to stdout, in a format import reads. "
                    "The protocol has no verb that lists keys, so the keys must be named.")
    parser.add_argument("keys", nargs="*", metavar="KEY",
                        help="keys to export (none: every key of the cluster, by SCAN)")
    parser.add_argument("--pattern", metavar="GLOB",
                        help="with no keys named, only the keys matching GLOB")
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="output format (default csv)")
    parser.add_argument("--keys-from", metavar="FILE",
                        help="read the keys from FILE ('-' for stdin): a csv, jsonl or json "
                             "file as import reads (values ignored), or one key per line")
    parser.add_argument("--keys-format", choices=(*FORMATS, "lines"),
                        help="format of --keys-from (default: from its extension; lines "
                             "otherwise)")
    return parser


def _check_usage(args: argparse.Namespace) -> None:
    """Combinations argparse cannot refuse by itself: exit status 2."""
    watching = args.stat or args.latency
    if (args.pipe or watching or args.scan) and args.words:
        flag = ("--pipe" if args.pipe else "--stat" if args.stat else "--latency"
                if args.latency else "--scan")
        fail(f"{flag} takes no VERB", status=2)
    if args.pattern is not None and not args.scan:
        fail("--pattern goes with --scan (or export --pattern)", status=2)
    repeats = args.repeat is not None or args.interval is not None
    if repeats and not (watching or (args.words and args.words[0] not in ("import", "export"))):
        fail("-r and -i repeat a VERB, --stat or --latency; give one", status=2)


def _env_port() -> int:
    value = os.environ.get("OLIVIA_PORT", "")
    try:
        return int(value) if value else DEFAULT_PORT
    except ValueError:
        fail(f"OLIVIA_PORT must be a port number, not {value!r}", status=2)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``olivia-cli`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    _check_usage(args)
    try:
        return _dispatch(args)
    except (CliError, OliviaError) as exc:  # OliviaError: connection lost, or an ERR of ours
        fail(str(exc))
    except ValueError as exc:  # an option the client refuses (an empty -a, say)
        fail(str(exc), status=2)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (olivia-cli export | head): not an error to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else _env_port()
    timeout = args.timeout if args.timeout > 0 else None
    client = Client(args.host, port, timeout, password=args.password, ssl=_tls(args))
    if args.pipe:
        if client_tls_requested(args):
            fail("--pipe does not speak TLS yet: run it on the node's machine, or use import",
                 status=2)
        return run_pipe(args.host, port, timeout, password=args.password)
    if args.stat:
        return run_stat(client, _schedule(args, FOREVER, STAT_INTERVAL))
    if args.latency:
        return run_latency(client, _schedule(args, FOREVER, LATENCY_INTERVAL))
    if args.scan:
        return run_scan(client, args.pattern)
    words: list[str] = args.words
    if words and words[0] == "import":
        options = _import_parser().parse_args(words[1:])
        return run_import(client, options.file, options.format)
    if words and words[0] == "export":
        return run_export(client, _export_parser().parse_args(words[1:]))
    if words and words[0].lower() == "help":
        print(help_text(" ".join(words[1:])))
        return 0
    printer = ReplyPrinter(args.mode or default_mode())
    if words:
        return run_command(client, one_shot_line(words), printer, _schedule(args, 1, 0.0))
    return run_interactive(client, printer)


def client_tls_requested(args: argparse.Namespace) -> bool:
    return bool(args.tls or args.cacert or args.insecure)


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """--tls, --cacert, --insecure as the client's TLS context."""
    if not client_tls_requested(args):
        return None
    try:
        context = ssl.create_default_context(cafile=args.cacert)
    except (OSError, ssl.SSLError) as exc:
        fail(f"--cacert {args.cacert}: {getattr(exc, 'strerror', None) or exc}", status=2)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _schedule(args: argparse.Namespace, count: int, interval: float) -> Schedule:
    """-r and -i, or the defaults of the job."""
    return Schedule(count if args.repeat is None else args.repeat,
                    interval if args.interval is None else args.interval)


if __name__ == "__main__":
    sys.exit(main())
