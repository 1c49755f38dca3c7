"""Starting and stopping the daemon: flags, config files, signals, exit codes."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from olivia import __version__
from olivia.config import Config, ConfigError, default_toml, load
from tests.helpers import OliviaProcess, free_port, run_olivia, running_node, wait_until

ROOT = Path(__file__).resolve().parent.parent


# -- config, pure ---------------------------------------------------------------


def test_repository_config_toml_is_the_documented_default() -> None:
    assert (ROOT / "config.toml").read_text() == default_toml()
    assert load(ROOT / "config.toml", {}) == Config()


def test_flags_override_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('port = 7000\nname = "from-file"\n')
    config = load(path, {"name": "from-flag"})
    assert (config.port, config.name, config.host) == (7000, "from-flag", "127.0.0.1")


@pytest.mark.parametrize(("text", "message"), [
    ("colour = 1", "unknown key 'colour'"),
    ('port = "5454"', "'port' must be an integer from 0 to 65535, got '5454'"),
    ("port = 70000", "'port' must be an integer from 0 to 65535"),
    ("port = true", "'port' must be an integer"),
    ("max_line_bytes = 10", "'max_line_bytes' must be an integer from 64"),
    ('peers = ["nohost"]', "'peers' must be a list of \"HOST:PORT\" strings"),
    ('name = "has space"', "'name' must be 1-64 characters"),
    ('log_level = "loud"', "'log_level' must be one of debug, info, warning, error"),
    ("port = ", "is not valid TOML"),
    ("[bloom]\nfp_rate = 2", "'bloom.fp_rate' must be a number from 0.0001 to 0.5"),
    ("[bloom]\ncolour = 1", "unknown key 'bloom.colour'"),
    ("bloom_capacity = 5", "unknown key 'bloom_capacity'"),
])
def test_bad_config_values(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=r"c\.toml") as info:
        load(path, {})
    assert message in str(info.value)


# -- the daemon as a process -------------------------------------------------------


def test_help_and_version() -> None:
    result = run_olivia("--help")
    assert result.returncode == 0
    for flag in ("--config", "--host", "--port", "--peers", "--name", "--advertise", "--version"):
        assert flag in result.stdout
    result = run_olivia("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"olivia {__version__}")


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code
    stderr = result.stderr
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr, stderr


def test_unknown_config_key_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("colour = 'blue'\n")
    one_error_line(run_olivia("--config", str(tmp_path / "bad.toml")), 2,
                   "bad.toml", "unknown key 'colour'")


def test_wrong_type_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("max_clients = 'many'\n")
    one_error_line(run_olivia("--config", str(tmp_path / "bad.toml")), 2,
                   "bad.toml", "'max_clients'")


def test_unreadable_config_file_exits_2(tmp_path: Path) -> None:
    one_error_line(run_olivia("--config", str(tmp_path / "missing.toml")), 2,
                   "missing.toml", "cannot read")


def test_invalid_toml_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[[[\n")
    one_error_line(run_olivia("--config", str(tmp_path / "bad.toml")), 2, "not valid TOML")


def test_bad_flag_values_exit_2() -> None:
    one_error_line(run_olivia("--port", "99999"), 2, "'port'", "99999")
    one_error_line(run_olivia("--port", "abc"), 2, "'port'")
    one_error_line(run_olivia("--peers", "nonsense"), 2, "'peers'")
    one_error_line(run_olivia("--bogus"), 2, "--bogus")


def test_port_in_use_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_error_line(run_olivia("--port", str(port)), 1,
                       f"127.0.0.1:{port}", "address already in use")


def test_a_config_toml_in_the_working_directory_is_not_read(tmp_path: Path) -> None:
    # Another tool's config.toml (issue 11: it used to be read, and refused).
    (tmp_path / "config.toml").write_text('[tool.black]\nline-length = 100\n')
    with running_node(cwd=tmp_path) as node, node.client() as client:
        assert b"name=127.0.0.1:" in client.request("INFO")


def test_olivia_config_names_the_file_when_no_flag_does(tmp_path: Path) -> None:
    (tmp_path / "env.toml").write_text('name = "from-env"\n')
    (tmp_path / "flag.toml").write_text('name = "from-flag"\n')
    env = {"OLIVIA_CONFIG": str(tmp_path / "env.toml")}
    with running_node(env=env) as node, node.client() as client:
        assert b"name=from-env," in client.request("INFO")
    with running_node("--config", str(tmp_path / "flag.toml"), env=env) as node, \
            node.client() as client:
        assert b"name=from-flag," in client.request("INFO")
    bad = run_olivia(env={"OLIVIA_CONFIG": str(tmp_path / "missing.toml")})
    assert bad.returncode == 2 and "missing.toml" in bad.stderr


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "n.toml").write_text(f'name = "file"\nport = {port}\n')
    config = str(tmp_path / "n.toml")
    with running_node("--config", config, "--name", "flag", "--port", "0") as node:
        assert node.port != port
        with node.client() as client:
            assert b"name=flag," in client.request("INFO")


def test_logs_are_lines_with_level_and_node_name() -> None:
    with running_node("--name", "logname") as node:
        pass
    lines = node.log().splitlines()
    assert lines, "no log output"
    for line in lines:
        assert " INFO logname " in line or " WARNING logname " in line, line


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_cleanly_within_5s(signum: int) -> None:
    with running_node() as node:
        with node.client() as client:
            client.request("SET sig:v")
            started = time.monotonic()
            node.signal(signum)
            assert node.wait(5) == 0
            assert time.monotonic() - started < 5
            assert client.is_closed_by_server(timeout=1)
        assert f"{signal.Signals(signum).name} received: shutting down" in node.log()
        assert "Traceback" not in node.log()


def test_sigterm_finishes_in_flight_replies() -> None:
    with running_node() as node, node.client() as client:
        n = 20_000
        client.send(b"".join(b"SET inflight%d:v\n" % i for i in range(n)))
        node.signal(signal.SIGTERM)
        replies = client.read_lines(n)
        assert all(reply.startswith(b":SAT inflight") for reply in replies)
        assert node.wait(5) == 0


def test_sigterm_with_a_client_that_never_reads() -> None:
    with running_node() as node, node.client() as client:
        client.request("SET big:" + "x" * 100_000)
        client.sock.setblocking(False)
        try:
            for _ in range(1000):
                client.sock.send(b"GET big\n" * 200)
        except BlockingIOError:
            pass
        started = time.monotonic()
        node.signal(signal.SIGTERM)
        assert node.wait(5) == 0
        assert time.monotonic() - started < 5


def test_a_second_signal_exits_at_once_without_draining(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("shutdown_timeout = 60.0\nport = 0\n")
    with running_node("--config", str(tmp_path / "c.toml")) as node, node.client() as client:
        client.request("SET big:" + "x" * 100_000)
        client.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # a client that never reads
            for _ in range(1000):
                client.sock.send(b"GET big\n" * 200)
        node.signal(signal.SIGTERM)
        wait_until(lambda: "client connection to drain" in node.log(), what="the drain to begin")
        started = time.monotonic()
        node.signal(signal.SIGTERM)
        assert node.wait(5) == 1  # forced: not the clean exit
        assert time.monotonic() - started < 5
        assert "received again: exiting now" in node.log()
        assert "Traceback" not in node.log()


def test_a_reply_over_max_reply_bytes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(f"max_reply_bytes = {1 << 20}\nport = 0\n")
    with running_node("--config", str(tmp_path / "c.toml")) as node, node.client() as client:
        client.request("SET big:" + "x" * 300_000)
        assert client.request("GET big,big,big").startswith(b":GOT big:")
        reply = client.request("t:GET big,big,big,big")
        assert reply.startswith(b"t:ERR GET reply too large: 1200000 bytes")
        assert client.request("PING") == b":PONG"


def test_max_clients_refuses_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("max_clients = 2\nport = 0\n")
    with running_node("--config", str(tmp_path / "c.toml")) as node:
        with node.client() as a, node.client() as b:
            assert a.request("PING") == b":PONG"
            assert b.request("PING") == b":PONG"
            with node.client() as c:
                assert c.read_line() == b":ERR max clients reached (limit 2)"
                assert c.is_closed_by_server()
        assert isinstance(node, OliviaProcess)
