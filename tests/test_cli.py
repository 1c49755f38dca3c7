"""olivia-cli as a user runs it: a subprocess against a real node, through
pipes and through a pseudo-terminal."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from olivia import Client
from olivia.core.help import VERB_HELP
from olivia.tools.cli.monitor import Latency, StatLine, human_bytes
from olivia.tools.cli.output import quote
from olivia.tools.cli.pipe import _ReplyCounter, count_requests
from olivia.tools.cli.request_lines import one_shot_line
from olivia.tools.cli.verb_help import complete, help_text
from tests.helpers import (
    DEADLINE,
    OliviaProcess,
    fake_server,
    free_port,
    running_cluster,
    wait_until,
)

CLI = [sys.executable, "-m", "olivia.tools.cli"]

# Values that need quoting in CSV and escaping on the wire.
TRICKY = {
    "comma": "a,b,c",
    "colon": "k:v:ttl",
    "percent": "100% %41 %zz",
    "quotes": "say \"hi\", 'there'",
    "newline": "line1\nline2",
    "crlf": "a\r\nb\rc",
    "unicode": "Ωlivia 日本語 \N{GRINNING FACE}",
    "empty": "",
    "spaces": "  padded  ",
    "key,with:odd%chars": "its value",
}


def run_cli(node: OliviaProcess | None, *args: str, input: bytes | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    port = ["-p", str(node.port)] if node is not None else []
    return subprocess.run([*CLI, *port, *args], input=input, capture_output=True,
                          timeout=60, env={**os.environ, **(env or {})},
                          stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def db(node: OliviaProcess) -> Iterator[Client]:
    with Client(node.host, node.port, timeout=DEADLINE) as client:
        yield client


# --------------------------------------------------------------------------
# One-shot
# --------------------------------------------------------------------------


def test_one_shot_prints_the_reply(node: OliviaProcess) -> None:
    done = run_cli(node, "SET", "os-a:1,os-b:hello world")
    assert (done.returncode, done.stdout) == (0, b":SAT os-a:1,os-b:hello world\n")
    done = run_cli(node, "GET", "os-b,os-a")
    assert (done.returncode, done.stdout) == (0, b":GOT os-b:hello world,os-a:1\n")
    assert done.stderr == b""


def test_one_shot_err_reply_exits_1(node: OliviaProcess) -> None:
    done = run_cli(node, "FROB", "x")
    assert done.returncode == 1
    assert done.stdout == b":ERR unknown verb 'FROB'\n"


def test_environment_gives_host_and_port(node: OliviaProcess) -> None:
    done = run_cli(None, "PING", "env", env={"OLIVIA_HOST": "127.0.0.1",
                                            "OLIVIA_PORT": str(node.port)})
    assert (done.returncode, done.stdout) == (0, b":PONG env\n")


def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run([*CLI, "-p", str(port), "PING"], capture_output=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr == (f"olivia-cli: cannot connect to 127.0.0.1:{port}: "
                           "Connection refused\n").encode()
    done = subprocess.run([*CLI, "-p", str(port)], capture_output=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1


def test_console_script_and_help() -> None:
    script = Path(sys.executable).with_name("olivia-cli")
    if not script.exists():
        pytest.skip("the olivia-cli console script is not installed")
    done = subprocess.run([str(script), "--help"], capture_output=True, timeout=30)
    assert done.returncode == 0
    assert b"--pipe" in done.stdout and b"import" in done.stdout and b"-h, --host" in done.stdout


def test_requests_from_stdin_without_a_terminal(node: OliviaProcess) -> None:
    done = run_cli(node, input=b"SET si:1\n\nGET si\r\nQUIT\nPING ignored\n")
    assert done.stdout == b":SAT si:1\n:GOT si:1\n:BYE\n"
    assert done.returncode == 0


def test_an_error_from_stdin_without_a_terminal_exits_1(node: OliviaProcess) -> None:
    done = run_cli(node, input=b"BOGUS\n")
    assert (done.returncode, done.stdout) == (1, b":ERR unknown verb 'BOGUS'\n")
    done = run_cli(node, input=b"PING a\nBOGUS\nPING b\n")  # later lines still run
    assert (done.returncode, done.stdout.count(b"\n")) == (1, 3)


def test_one_shot_line_joins_the_items_of_a_verb() -> None:
    assert one_shot_line(["GET", "a", "b"]) == "GET a,b"
    assert one_shot_line(["get", "a", "b,c"]) == "get a,b,c"
    assert one_shot_line(["t1:DEL", "a", "b"]) == "t1:DEL a,b"
    assert one_shot_line(["SET", "a:1", "b:2"]) == "SET a:1,b:2"
    assert one_shot_line(["SETEX", "a:1:5", "b:2:0.5"]) == "SETEX a:1:5,b:2:0.5"
    assert one_shot_line(["GET", "one key"]) == "GET one key"  # one argument: as given
    assert one_shot_line(["PING", "are", "you", "there?"]) == "PING are you there?"
    assert one_shot_line(["REQUEST", "FORGET", "n1"]) == "REQUEST FORGET n1"
    assert one_shot_line(["FROB", "a", "b"]) == "FROB a b"
    # Every verb whose syntax lists items is joined with ',', by the help table.
    listed = {verb for verb, row in VERB_HELP.items() if "[," in row.syntax}
    assert {"SET", "SETEX", "GET", "DEL"} <= listed
    for verb in listed:
        assert one_shot_line([verb, "x", "y"]) == f"{verb} x,y"


def test_one_shot_arguments_are_items(node: OliviaProcess) -> None:
    done = run_cli(node, "SET", "j-a:1", "j-b:two words")
    assert (done.returncode, done.stdout) == (0, b":SAT j-a:1,j-b:two words\n")
    done = run_cli(node, "GET", "j-a", "j-b", "j-none")
    assert (done.returncode, done.stdout) == (0, b":GOT j-a:1,j-b:two words\n")
    done = run_cli(node, "PING", "two", "words")
    assert done.stdout == b":PONG two words\n"
    done = run_cli(node, "DEL", "j-a", "j-b")
    assert done.stdout == b":DELETED j-a,j-b\n"


def test_help_without_a_server() -> None:
    done = subprocess.run([*CLI, "-p", str(free_port()), "help", "setex"], capture_output=True,
                          timeout=30)
    assert done.returncode == 0
    assert done.stdout.decode() == help_text("SETEX") + "\n"


# --------------------------------------------------------------------------
# Output: --raw, decoded for reading (--no-raw, a terminal), as sent (a pipe)
# --------------------------------------------------------------------------


def test_raw_prints_decoded_values_one_a_line(node: OliviaProcess, db: Client) -> None:
    db.mset({"raw-a": "hello, world: 100%", "raw-b": b"\x00\xff", "raw-c": ""})
    done = run_cli(node, "--raw", "GET", "raw-a", "raw-none", "raw-b", "raw-c")
    assert (done.returncode, done.stdout) == (0, b"hello, world: 100%\n\x00\xff\n\n")
    requests = [b"SET raw-d:x%2Cy,raw-e:1", b"DEL raw-d,raw-e,raw-no", b"FROB",
                b"PING %41 b", b"INFO"]
    done = run_cli(node, "--raw", input=b"".join(line + b"\n" for line in requests))
    assert done.returncode == 1
    assert done.stderr == b"(error) unknown verb 'FROB'\n"
    out = done.stdout.split(b"\n")
    assert out[:5] == [b"raw-d:x,y", b"raw-e:1", b"raw-d", b"raw-e",
                       b"%41 b"]  # PING's text is not percent-encoded
    assert out[5].startswith(b"name=") and any(line.startswith(b"keys=") for line in out[6:])


def test_quote_escapes_what_is_not_printable() -> None:
    assert quote(b"plain text") == '"plain text"'
    assert quote("Ωlivia 日本".encode()) == '"Ωlivia 日本"'
    assert quote(b'a"b\\c') == r'"a\"b\\c"'
    assert quote(b"\x00\xff\r\n\t\x1b") == r'"\x00\xff\r\n\t\x1b"'


def test_decoded_for_reading(node: OliviaProcess, db: Client) -> None:
    db.mset({"hr-a": "hello, world", "hr-b": b"\x00\xff\n"})
    shown = [
        ("SET hr-c:1", "OK"),
        ("GET hr-a", '"hello, world"'),
        ("GET hr-none", "(nil)"),
        ("GET hr-a,hr-none,hr-b", '1) "hr-a" => "hello, world"\n2) "hr-b" => "\\x00\\xff\\n"'),
        ("DEL hr-c,hr-none", '(deleted 1) "hr-c"'),
        ("PING", "PONG"),
        ("t7:PING are you there?", '[t7] "are you there?"'),
        ("REQUEST PEERS", "(no peers)"),
        ("FROB", "(error) unknown verb 'FROB'"),
    ]
    done = run_cli(node, "--no-raw", input="".join(f"{line}\n" for line, _ in shown).encode())
    assert done.stdout.decode() == "".join(f"{text}\n" for _, text in shown)
    assert done.returncode == 1  # for the FROB
    info = run_cli(node, "--no-raw", "INFO").stdout.decode().splitlines()
    assert info[0].startswith("name=") and any(line.startswith("keys=") for line in info)
    assert run_cli(node, "--no-raw", "--wire", "PING").returncode == 2  # one mode only


# --------------------------------------------------------------------------
# -r and -i, --stat, --latency
# --------------------------------------------------------------------------


def test_repeat_and_interval(node: OliviaProcess) -> None:
    started = time.monotonic()
    done = run_cli(node, "-r", "3", "-i", "0.1", "PING", "again")
    assert (done.returncode, done.stdout) == (0, b":PONG again\n" * 3)
    assert time.monotonic() - started >= 0.2  # two waits of -i between three runs
    done = run_cli(node, "-r", "2", "FROB")
    assert (done.returncode, done.stdout.count(b":ERR")) == (1, 2)


@pytest.mark.parametrize(("args", "message"), [
    (["-r", "0", "PING"], b"must be at least 1, or -1"),
    (["-i", "-1", "PING"], b"must be 0 or more seconds"),
    (["-r", "2"], b"-r and -i repeat a VERB, --stat or --latency"),
    (["--stat", "GET", "a"], b"--stat takes no VERB"),
    (["--stat", "--latency"], b"not allowed with argument"),
])
def test_bad_repeat_options_exit_2(args: list[str], message: bytes) -> None:
    done = subprocess.run([*CLI, "-p", str(free_port()), *args], capture_output=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert message in done.stderr


def test_stat_line_counts_ops_between_samples() -> None:
    stats = StatLine()
    info = {"keys": "1234", "used_memory": str(3 << 20), "connected_clients": "2",
            "peers": "1", "total_commands_processed": "100"}
    assert stats.line(info, 10.0).split() == ["1,234", "3.00M", "2", "1", "-"]
    info["total_commands_processed"] = "351"  # 250 requests and our INFO
    assert stats.line(info, 10.5).split()[-1] == "500"
    assert [human_bytes(n) for n in (512, 2048, 5 << 30)] == ["512B", "2.00K", "5.00G"]


def test_latency_summary() -> None:
    stats = Latency()
    assert stats.line() == "min: -, avg: -, max: - ms (0 samples)"
    for seconds in (0.001, 0.003, 0.002):
        stats.add(seconds)
    assert stats.line() == "min: 1.000, avg: 2.000, max: 3.000 ms (3 samples)"


STAT_ROW = rb"[\d,]+ +[\d.]+[BKMGT] +\d+ +\d+ +"


def test_stat_prints_a_line_per_sample(node: OliviaProcess) -> None:
    done = run_cli(node, "--stat", "-r", "2", "-i", "0.05")
    assert done.returncode == 0, done.stderr
    header, first, second = done.stdout.decode().splitlines()
    assert header.split() == ["keys", "mem", "clients", "peers", "ops/s"]
    assert re.fullmatch(STAT_ROW.decode() + "-", first), first
    assert re.fullmatch(STAT_ROW.decode() + r"[\d,]+", second), second


def test_latency_counts_samples(node: OliviaProcess) -> None:
    done = run_cli(node, "--latency", "-r", "20", "-i", "0")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rb"min: [\d.]+, avg: [\d.]+, max: [\d.]+ ms \(20 samples\)\n",
                        done.stdout), done.stdout


# --------------------------------------------------------------------------
# --pipe
# --------------------------------------------------------------------------


def test_count_requests_skips_empty_lines() -> None:
    assert count_requests(b"a\nb\n") == 2
    assert count_requests(b"\n\r\na\n\n\nb\r\n \n") == 3  # ' ' is a line (it gets an ERR)
    assert count_requests(b"") == 0


@pytest.mark.parametrize("piece", [1, 3, 7, 4096, 1 << 20])
def test_reply_counter_finds_errors_however_the_stream_is_cut(
        piece: int, capsys: pytest.CaptureFixture[str]) -> None:
    stream = (b":SAT a:1\nx:ERR bad\n:GOT k:" + b"v" * 10_000 + b"\n:ERR second one\n"
              b":GOT k:ERR not an error\nt.1:BYE\n")
    mine, theirs = socket.socketpair()
    counter = _ReplyCounter(mine)
    with mine:
        counter.start()
        with theirs:
            for start in range(0, len(stream), piece):
                theirs.sendall(stream[start:start + piece])
        counter.join(DEADLINE)
    assert (counter.replies, counter.errors, counter.bye) == (6, 2, True)
    assert capsys.readouterr().err == "x:ERR bad\n:ERR second one\n"


def test_pipe_counts_replies_and_errors(node: OliviaProcess, db: Client) -> None:
    lines = b"".join(b"SET pipe-%d:v%d\n" % (i, i) for i in range(5000))
    stream = lines + b"\n\r\nSET pipe-x:1,broken\r\nFOO\n\nSET pipe-last:end"  # no final LF
    done = run_cli(node, "--pipe", input=stream)
    assert done.stdout.decode().splitlines() == [
        "All data transferred. Waiting for the last reply...",
        "Last reply received from server.",
        "errors: 2, replies: 5003",
    ]
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        ":ERR SET item 'broken' needs key:value; write ':' inside a key or value as %3A "
        "and ',' as %2C",
        ":ERR unknown verb 'FOO'",
    ]
    assert db.mget(["pipe-0", "pipe-4999", "pipe-last", "pipe-x"]) == {
        b"pipe-0": b"v0", b"pipe-4999": b"v4999", b"pipe-last": b"end"}


def test_pipe_of_multi_key_lines_exits_0(node: OliviaProcess, db: Client) -> None:
    stream = b"".join(
        b"SET " + b",".join(b"pm-%d:%d" % (i, i) for i in range(start, start + 100)) + b"\n"
        for start in range(0, 20_000, 100))
    done = run_cli(node, "--pipe", input=stream)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"errors: 0, replies: 200\n")
    assert db.get("pm-19999") == b"19999"


# --------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    import csv
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    return path


def test_import_csv_with_tricky_values(node: OliviaProcess, db: Client, tmp_path: Path) -> None:
    rows = [("key", "value"), *((f"csv-{k}", v) for k, v in TRICKY.items())]
    path = write_csv(tmp_path / "data.csv", rows)
    done = run_cli(node, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rb"imported 10 keys in \d+\.\d\d s \([\d,]+ keys/s\), 0 errors\n",
                        done.stderr), done.stderr
    assert done.stdout == b""
    assert db.mget([f"csv-{k}" for k in TRICKY]) == {
        f"csv-{k}".encode(): v.encode() for k, v in TRICKY.items()}
    assert db.get("key") is None  # the header was skipped


def test_import_csv_from_stdin_without_header(node: OliviaProcess, db: Client) -> None:
    done = run_cli(node, "import", "-", "--format", "csv",
                   input=b"stdin-a,1\r\n\r\nstdin-b,\"two, with comma\"\r\n")
    assert done.returncode == 0, done.stderr
    assert db.mget(["stdin-a", "stdin-b"]) == {b"stdin-a": b"1", b"stdin-b": b"two, with comma"}


def test_import_jsonl_with_binary(node: OliviaProcess, db: Client, tmp_path: Path) -> None:
    blob = bytes(range(256))
    records = [{"key": f"jl-{k}", "value": v} for k, v in TRICKY.items()]
    records.append({"key": "jl-binary", "value_b64": base64.b64encode(blob).decode()})
    records.append({"key_b64": base64.b64encode(b"\xffkey").decode(), "value": "bin key"})
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    done = run_cli(node, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert b"imported 12 keys" in done.stderr
    assert db.get("jl-binary") == blob
    assert db.get(b"\xffkey") == b"bin key"
    assert db.mget([f"jl-{k}" for k in TRICKY]) == {
        f"jl-{k}".encode(): v.encode() for k, v in TRICKY.items()}


def test_import_json_object(node: OliviaProcess, db: Client, tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps({f"js-{k}": v for k, v in TRICKY.items()}, indent=2))
    done = run_cli(node, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert db.mget([f"js-{k}" for k in TRICKY]) == {
        f"js-{k}".encode(): v.encode() for k, v in TRICKY.items()}
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    assert run_cli(node, "import", str(empty)).returncode == 0


def test_bad_line_stops_the_import_and_nothing_from_it_is_applied(
        node: OliviaProcess, db: Client, tmp_path: Path) -> None:
    # Header on line 1, good rows on lines 2..2502, a row with 4 fields on 2503.
    rows: list[tuple[str, ...]] = [("key", "value")]
    rows += [(f"bad-{line}", f"v{line}") for line in range(2, 2503)]
    rows.append(("bad-2503", "x", "5", "extra"))
    rows.append(("bad-2504", "after"))
    path = write_csv(tmp_path / "bad.csv", rows)
    done = run_cli(node, "import", str(path))
    assert done.returncode == 1
    message = done.stderr.decode()
    assert message.startswith(f"olivia-cli: {path}:2503: expected 2 fields (key,value) or 3 "
                              "(key,value,ttl), got 4")
    assert "2000 keys before line 2503 were imported" in message
    assert message.count("\n") == 1
    # Rows 2..2001 went in two full lines of 1000; the batch holding the bad
    # row was never sent.
    assert db.get("bad-2001") == b"v2001"
    assert db.mget(["bad-2002", "bad-2502", "bad-2503", "bad-2504"]) == {}


@pytest.mark.parametrize(("name", "content", "line", "what", "absent"), [
    ("quote.csv", b'qa,1\nqb,"unterminated\nqc,3\n', 3, "malformed CSV", "qb"),
    ("quote2.csv", b'qd,1\nqe,"x"y\n', 2, "malformed CSV", "qe"),
    ("empty-key.csv", b"ea,1\n,2\n", 2, "empty key", "ea"),
    ("long-key.csv", b"la,1\n" + b"k" * 251 + b",2\n", 2, "is 251 bytes long (limit 250)",
     "la"),
    ("multiline.csv", b'ma,"a\nb\nc"\nmb\n', 4, "expected 2 fields (key,value) or 3", "ma"),
    ("bad.jsonl", b'{"key": "ja", "value": "1"}\n{"key": "jb", "value": }\n', 2, "bad JSON",
     "ja"),
    ("nokey.jsonl", b'{"key": "jc", "value": "1"}\n\n{"value": "x"}\n', 3,
     'need exactly one of "key" and "key_b64"', "jc"),
    ("number.jsonl", b'{"key": "jd", "value": 5}\n', 1, '"value" must be a string, not a number',
     "jd"),
    ("badttl.jsonl", b'{"key": "jt", "value": "1", "ttl": -1}\n', 1, "bad ttl -1 of key 'jt'",
     "jt"),
    ("badttl.csv", b'ct,1,soon\n', 1, "bad ttl 'soon' of key 'ct'", "ct"),
    ("extra.jsonl", b'{"key": "je", "value": "1", "tll": 5}\n', 1, "unexpected field 'tll'",
     "je"),
    ("b64.jsonl", b'{"key": "jf", "value_b64": "!!"}\n', 1, "not valid base64", "jf"),
    ("object.json", b'{\n  "oa": "1",\n  "ob": 2\n}\n', 3,
     "the value of key 'ob' must be a string, not a number", "oa"),
    ("syntax.json", b'{\n  "oc": "1",\n  "od": "2",,\n}\n', 3, "expected a string key", "oc"),
    ("syntax2.json", b'{\n  "oe": "1",\n  "of": tru\n}\n', 3, "bad JSON: Expecting value",
     "oe"),
    ("array.json", b'["x"]', 1, "expected one JSON object", None),
])
def test_bad_input_names_file_and_line(node: OliviaProcess, db: Client, tmp_path: Path,
                                       name: str, content: bytes, line: int, what: str,
                                       absent: str | None) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    done = run_cli(node, "import", str(path))
    assert done.returncode == 1
    message = done.stderr.decode()
    assert message.startswith(f"olivia-cli: {path}:{line}: "), message
    assert what in message
    assert message.count("\n") == 1
    if absent is not None:  # all in one unsent batch: nothing was applied
        assert db.get(absent) is None


def test_unknown_extension_needs_format(node: OliviaProcess, tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("a,1\n")
    done = run_cli(node, "import", str(path))
    assert done.returncode == 1
    assert b"use --format csv, jsonl or json" in done.stderr


@pytest.fixture
def refusing_server() -> Iterator[int]:
    """A fake node: INFO answers, the third SET line is refused, others stored."""
    def handle(conn: socket.socket) -> None:
        sets = 0
        with conn.makefile("rb") as lines:
            for line in lines:
                if line.startswith(b"INFO"):
                    conn.sendall(b":INFO name=fake,max_line_bytes=1048576\n")
                elif line.startswith(b"SET"):
                    sets += 1
                    conn.sendall(b":ERR internal error; the request may not have been "
                                 b"carried out\n" if sets == 3 else b":SAT x:y\n")

    with fake_server(handle) as port:
        yield port


def test_server_error_stops_the_import(refusing_server: int, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "many.csv", [(f"k{i}", "v") for i in range(10_000)])
    done = subprocess.run([*CLI, "-p", str(refusing_server), "import", str(path)],
                          capture_output=True, timeout=60)
    assert done.returncode == 1
    message = done.stderr.decode()
    assert "the server refused a request: internal error" in message, message
    assert message.count("\n") == 1


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------


def test_export_import_round_trip(node: OliviaProcess, db: Client, tmp_path: Path) -> None:
    data = {f"rt-{k}".encode(): v.encode() for k, v in TRICKY.items()}
    data[b"rt-binary"] = bytes(range(256))
    data[b"rt-\xfe\xff-key"] = b"\x00\x01"
    db.mset(data)
    keys = tmp_path / "keys.jsonl"
    keys.write_text("".join(json.dumps({"key_b64": base64.b64encode(k).decode(),
                                        "value": ""}) + "\n" for k in data))
    for fmt in ("csv", "jsonl"):
        exported = run_cli(node, "export", "--format", fmt, "--keys-from", str(keys),
                           "rt-missing")
        assert exported.returncode == 0, exported.stderr
        assert exported.stderr == b"exported 12 keys (1 not found)\n"
        out = tmp_path / f"out.{fmt}"
        out.write_bytes(exported.stdout)
        assert db.delete(*data) == len(data)
        done = run_cli(node, "import", str(out))
        assert done.returncode == 0, done.stderr
        assert db.mget(data) == data
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"key": "rt-comma", "value": "a,b,c"}
    assert {"key": "rt-binary", "value_b64": base64.b64encode(bytes(range(256))).decode()} \
        in [json.loads(line) for line in lines]


def test_export_json_of_text_values(node: OliviaProcess, db: Client, tmp_path: Path) -> None:
    db.mset({"ej-a": "1", "ej-b": "x\ny"})
    done = run_cli(node, "export", "--format", "json", "ej-a", "ej-b")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"ej-a": "1", "ej-b": "x\ny"}
    db.set("ej-bin", b"\xff")
    done = run_cli(node, "export", "--format", "json", "ej-bin")
    assert done.returncode == 1
    assert b"use --format jsonl" in done.stderr


def test_export_of_a_whole_cluster_round_trips_with_ttls(tmp_path: Path) -> None:
    data = {f"wc-{i}".encode(): f"v{i}".encode() for i in range(3000)}
    data[b"wc-\x00,:\xff"] = bytes(range(256))
    with running_cluster(3) as cluster:
        first, last = cluster.nodes[0], cluster.nodes[2]
        with Client(first.host, first.port, timeout=DEADLINE) as db:
            db.mset(data)
            db.setex("wc-ttl", 500, "expiring")
            for fmt in ("csv", "jsonl"):
                exported = run_cli(last, "export", "--format", fmt)
                assert exported.returncode == 0, exported.stderr
                assert exported.stderr == b"exported 3002 keys\n"
                out = tmp_path / f"all.{fmt}"
                out.write_bytes(exported.stdout)
                assert db.delete(*data, "wc-ttl") == 3002
                assert db.dbsize() == 0
                done = run_cli(cluster.nodes[1], "import", str(out))
                assert done.returncode == 0, done.stderr
                wait_until(lambda: db.mget(data) == data, what="the imported keys everywhere")
                assert 490 < db.ttl("wc-ttl") <= 500 and db.get("wc-ttl") == b"expiring"
                assert db.ttl("wc-1") == -1
            scanned = run_cli(last, "--scan", "--pattern", "wc-1?")
            assert sorted(scanned.stdout.split()) == sorted(f"wc-{i}".encode()
                                                            for i in range(10, 20))
            some = run_cli(last, "export", "--format", "jsonl", "--pattern", "wc-2??")
            assert len(some.stdout.splitlines()) == 100


def test_scan_takes_no_verb_and_pattern_needs_scan(node: OliviaProcess) -> None:
    assert run_cli(node, "--scan", "GET").returncode == 2
    done = run_cli(node, "--pattern", "a*")
    assert done.returncode == 2 and b"--pattern goes with --scan" in done.stderr


# --------------------------------------------------------------------------
# help and Tab completion, worked out from the help table
# --------------------------------------------------------------------------


def test_help_lists_every_verb_and_explains_one() -> None:
    listing = help_text()
    for verb, row in VERB_HELP.items():
        assert re.search(rf"^  {re.escape(f'{verb} {row.syntax}'.rstrip())} +"
                         rf"{re.escape(row.summary)}$", listing, re.MULTILINE), verb
    assert help_text("get") == (f"  GET {VERB_HELP['GET'].syntax}\n"
                                f"  summary: {VERB_HELP['GET'].summary}")
    assert help_text("request peers").startswith("  REQUEST PEERS\n")
    assert len(help_text("Request").splitlines()) == sum(v.startswith("REQUEST ")
                                                        for v in VERB_HELP)
    assert help_text("FROB") == "no verb 'FROB'; 'help' lists them"


def test_tab_completes_verbs_in_any_case() -> None:
    assert complete("", "se").matches == ["SET ", "SETEX ", "SETNX "]
    assert complete("", "Ge").matches == ["GET ", "GETDEL "]
    assert complete("", "pi").matches == ["PING "]
    assert complete("", "t1:dec").matches == ["t1:DECR "]  # a tag is kept
    assert complete("", "he").matches == ["help "]
    first_words = list(dict.fromkeys(verb.split()[0] for verb in VERB_HELP))
    assert complete("", "").matches == [f"{word} " for word in [*first_words, "help", "exit"]]
    assert complete("request ", "b").matches == ["BLOOMFILTER "]
    assert complete("help ", "pi").matches == ["PING "]
    assert complete("", "frob").matches == []
    shown = complete("", "SET").shown  # listed with their syntax, aligned
    assert [line.split()[:2] for line in shown] == [
        ["SET", VERB_HELP["SET"].syntax], ["SETEX", VERB_HELP["SETEX"].syntax],
        ["SETNX", VERB_HELP["SETNX"].syntax]]


def test_tab_after_a_verb_shows_its_syntax() -> None:
    for before, word, verb in [("GET ", "", "GET"), ("get ", "a,b", "GET"),
                               ("t1:SETEX ", "", "SETEX"), ("REQUEST peers ", "", "REQUEST PEERS"),
                               ("help del ", "", "DEL")]:
        done = complete(before, word)
        row = VERB_HELP[verb]
        assert done.matches == [], before
        assert done.hint.split() == [*verb.split(), *row.syntax.split(), *row.summary.split()]
    assert complete("FROB ", "").hint == ""


# --------------------------------------------------------------------------
# Through a pseudo-terminal
# --------------------------------------------------------------------------


class Terminal:
    """A subprocess on a pseudo-terminal, read with a deadline."""

    def __init__(self, args: Sequence[str], env: dict[str, str],
                 stdin_tty: bool = True) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.output = b""
        try:
            self.proc = subprocess.Popen(
                list(args), stdin=slave if stdin_tty else subprocess.DEVNULL, stdout=slave,
                stderr=slave, env=env, close_fds=True)
        finally:
            os.close(slave)

    def expect(self, pattern: bytes, timeout: float = DEADLINE) -> None:
        """Read until ``pattern`` (a regex) appears in the output since the last match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not regex.search(self.output):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in {self.output[-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the process closed the terminal
                    chunk = b""
                if not chunk:
                    if not regex.search(self.output):
                        raise AssertionError(f"EOF before {pattern!r}: {self.output[-2000:]!r}")
                    break
                self.output += chunk
        match = regex.search(self.output)
        assert match is not None
        self.output = self.output[match.end():]

    def type(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\r")

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)
        os.close(self.master)


def terminal_env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "TERM": "dumb", "COLUMNS": "100",
            "PYTHONUNBUFFERED": "1"}


def test_interactive_session(node: OliviaProcess, tmp_path: Path) -> None:
    term = Terminal([*CLI, "-p", str(node.port)], terminal_env(tmp_path))
    try:
        prompt = re.escape(f"127.0.0.1:{node.port}> ".encode())
        term.expect(prompt)
        term.type("SET tty-a:1,tty-b:x%00y")
        term.expect(rb"\r\nOK\r\n" + prompt)
        term.type("GET tty-a")
        term.expect(rb'\r\n"1"\r\n' + prompt)
        term.type("GET tty-a,tty-none,tty-b")
        term.expect(rb'\r\n1\) "tty-a" => "1"\r\n2\) "tty-b" => "x\\x00y"\r\n' + prompt)
        term.type("help")
        term.expect(rb"SETEX key:value:ttl.*expire")
        term.expect(prompt)
        term.type("FOO")
        term.expect(rb"\(error\) unknown verb 'FOO'\r\n" + prompt)
        term.type("INFO")  # one field a line
        term.expect(rb"\r\nname=127\.0\.0\.1:\d+\r\nversion=[^\r\n]*\r\n")
        term.expect(rb"\r\nkeys=\d+\r\n")
        term.expect(prompt)
        term.type("quit")
        term.expect(rb"BYE")
        assert term.proc.wait(DEADLINE) == 0
    finally:
        term.close()
    history = (tmp_path / ".olivia_cli_history").read_text()
    assert "SET tty-a:1" in history and "GET tty-a" in history


def test_interactive_wire_mode_prints_reply_lines(node: OliviaProcess, tmp_path: Path) -> None:
    term = Terminal([*CLI, "-p", str(node.port), "--wire"], terminal_env(tmp_path))
    try:
        term.expect(rb"> ")
        term.type("t1:PING x")
        term.expect(rb"\r\nt1:PONG x\r\n")
        term.type("exit")
        assert term.proc.wait(DEADLINE) == 0
    finally:
        term.close()


def test_help_verb_at_the_prompt(node: OliviaProcess, tmp_path: Path) -> None:
    term = Terminal([*CLI, "-p", str(node.port)], terminal_env(tmp_path))
    try:
        term.expect(rb"> ")
        term.type("help get")
        row = VERB_HELP["GET"]
        term.expect(re.escape(f"  GET {row.syntax}\r\n  summary: {row.summary}\r\n".encode()))
        term.type("HELP")  # every verb
        for verb in VERB_HELP:
            term.expect(re.escape(f"\r\n  {verb} ".encode()))
        term.type("exit")
        assert term.proc.wait(DEADLINE) == 0
    finally:
        term.close()


def test_tab_completes_verbs_and_shows_their_syntax(node: OliviaProcess, tmp_path: Path) -> None:
    term = Terminal([*CLI, "-p", str(node.port)], terminal_env(tmp_path))
    prompt = re.escape(f"127.0.0.1:{node.port}> ".encode())
    try:
        term.expect(prompt)
        term.send(b"se\t")  # ambiguous: both listed with their syntax, "SET" typed
        term.expect(re.escape(f"  SET {VERB_HELP['SET'].syntax} ".encode()))
        term.expect(re.escape(f"  SETEX {VERB_HELP['SETEX'].syntax} ".encode()))
        term.expect(prompt + rb"SET")
        term.send(b"\x15exis\t")  # Ctrl-U, then one match: completed, upper case
        term.expect(rb"EXISTS ")
        term.send(b"\t")  # after a whole verb: its syntax under the line
        term.expect(re.escape(f"\r\n  EXISTS {VERB_HELP['EXISTS'].syntax}  "
                              f"{VERB_HELP['EXISTS'].summary}"
                              f"\r\n127.0.0.1:{node.port}> EXISTS ".encode()))
        term.send(b"tab-a\r")
        term.expect(rb"\r\n\(empty list\)\r\n" + prompt)
        term.type("exit")
        assert term.proc.wait(DEADLINE) == 0
    finally:
        term.close()


@pytest.mark.parametrize(("args", "shown"), [
    (["--stat", "-i", "0.05"], rb"\r\n" + STAT_ROW + rb"[\d,]+\r\n"),  # a second line
    (["--latency"], rb"\rmin: [\d.]+, avg: [\d.]+, max: [\d.]+ ms \(\d+ samples\)"),
])
def test_stat_and_latency_end_on_ctrl_c(node: OliviaProcess, tmp_path: Path, args: list[str],
                                        shown: bytes) -> None:
    term = Terminal([*CLI, "-p", str(node.port), *args], terminal_env(tmp_path),
                    stdin_tty=False)
    try:
        term.expect(shown)
        term.proc.send_signal(signal.SIGINT)
        assert term.proc.wait(DEADLINE) == 0
    finally:
        term.close()


def test_interactive_exit_and_eof(node: OliviaProcess, tmp_path: Path) -> None:
    for leave in ("exit", "\x04"):  # the word, or Ctrl-D on an empty line
        term = Terminal([*CLI, "-p", str(node.port)], terminal_env(tmp_path))
        try:
            term.expect(rb"> ")
            if leave == "exit":
                term.type("exit")
            else:
                os.write(term.master, b"\x04")
            assert term.proc.wait(DEADLINE) == 0
        finally:
            term.close()


def test_import_shows_a_progress_bar_on_a_terminal(node: OliviaProcess, db: Client,
                                                   tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bar.csv", [(f"bar-{i}", str(i)) for i in range(3000)])
    term = Terminal([*CLI, "-p", str(node.port), "import", str(path)], terminal_env(tmp_path),
                    stdin_tty=False)
    try:
        term.expect(rb"importing: 100%.*3\.00k/3\.00k")
        term.expect(rb"imported 3000 keys in .* keys/s\), 0 errors")
        assert term.proc.wait(DEADLINE) == 0
    finally:
        term.close()
    assert db.get("bar-2999") == b"2999"


def test_export_says_key_for_one(node: OliviaProcess, db: Client) -> None:
    db.set("exported-one", "v")
    exported = run_cli(node, "export", "exported-one")
    assert exported.returncode == 0 and exported.stderr == b"exported 1 key\n"
