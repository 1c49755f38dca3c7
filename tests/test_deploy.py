"""The deployment files under deploy/: what can be checked on a machine with
no systemd running, no Docker and no Kubernetes.  The unit goes through
``systemd-analyze verify``; the Dockerfile, the compose file and the
manifests are parsed and held to what docs/deploy.md promises; the
compose file's and the sample config's nodes run as plain processes on
loopback, with their own commands and settings."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from olivia.config import load
from tests.helpers import DEADLINE, LineClient, OliviaProcess, free_port, info_of, wait_until

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PASSWORD = "deploy-test-password"


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze (Debian's systemd package)")
    beside = Path(sys.executable).with_name("olivia")  # the venv's, not on PATH maybe
    olivia = str(beside) if beside.exists() else shutil.which("olivia")
    if olivia is None:
        pytest.skip("the olivia script is not installed (pip install -e .)")
    unit = (DEPLOY / "systemd" / "olivia.service").read_text()
    # verify checks that ExecStart's binary and the credentials' files exist:
    # point them at this machine's
    for name in ("password", "cluster-secret"):
        (tmp_path / name).write_text("x\n")
    checked = tmp_path / "olivia.service"
    checked.write_text(unit.replace("/usr/local/bin/olivia", olivia)
                       .replace("/etc/olivia/", f"{tmp_path}/"))
    done = subprocess.run([analyze, "verify", str(checked)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    service = _unit_section(unit, "Service")
    assert service["ExecReload"] == "/bin/kill -USR1 $MAINPID"
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert "LoadCredential" in service and service["DynamicUser"] == "yes"


def _unit_section(unit: str, name: str) -> dict[str, str]:
    section: dict[str, str] = {}
    current = ""
    for line in unit.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif current == name and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            section.setdefault(key, value)
    return section


def test_the_dockerfile_is_slim_non_root_and_checks_health() -> None:
    instructions = dockerfile_instructions((DEPLOY / "docker" / "Dockerfile").read_text())
    kinds = [kind for kind, _ in instructions]
    (base,) = [rest for kind, rest in instructions if kind == "FROM"]
    assert re.fullmatch(r"python:3\.\d+-slim", base)
    users = [rest for kind, rest in instructions if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    (health,) = [rest for kind, rest in instructions if kind == "HEALTHCHECK"]
    assert "/health" in health and "8080" in health
    exposed = " ".join(rest for kind, rest in instructions if kind == "EXPOSE").split()
    assert {"5454", "6379", "8080"} <= set(exposed)
    (cmd,) = [rest for kind, rest in instructions if kind == "CMD"]
    assert '"--http-port", "8080"' in cmd  # the port the healthcheck asks


def test_the_kubernetes_manifests() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "olivia.yaml").read_text()))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    (headless,) = [s for s in by_kind["Service"] if s["spec"].get("clusterIP") == "None"]
    assert headless["spec"]["publishNotReadyAddresses"] is True
    (statefulset,) = by_kind["StatefulSet"]
    spec = statefulset["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == headless["metadata"]["name"]
    (container,) = spec["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    (configmap,) = by_kind["ConfigMap"]
    settings = tomllib.loads(configmap["data"]["olivia.toml"])
    discovery = settings["cluster"]["discovery"]
    name = headless["metadata"]["name"]
    assert re.fullmatch(rf"dns:{name}\.[a-z0-9-]+\.svc\.cluster\.local:5454", discovery)


def test_the_kubernetes_config_is_one_olivia_accepts(tmp_path: Path) -> None:
    documents = yaml.safe_load_all((DEPLOY / "kubernetes" / "olivia.yaml").read_text())
    (configmap,) = [d for d in documents if d["kind"] == "ConfigMap"]
    path = tmp_path / "olivia.toml"
    path.write_text(configmap["data"]["olivia.toml"])
    config = load(path, {})
    assert config.cluster_discovery.startswith("dns:olivia-headless.")
    assert config.http_port == 8080 and config.max_memory > 0


def _compose_services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def test_the_compose_file_describes_three_nodes_on_loopback_ports() -> None:
    services = _compose_services()
    assert sorted(services) == ["n1", "n2", "n3"]
    for service in services.values():
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
        assert set(service["secrets"]) == {"olivia_password", "olivia_cluster_secret"}


def _secrets(tmp_path: Path) -> dict[str, str]:
    """The files the secrets would be, with the test's password and secret."""
    (tmp_path / "password").write_text(PASSWORD + "\n")
    (tmp_path / "secret").write_text("deploy-test-secret\n")
    return {"/run/secrets/olivia_password": str(tmp_path / "password"),
            "/run/secrets/olivia_cluster_secret": str(tmp_path / "secret")}


def _local_config(source: Path, target: Path, paths: dict[str, str]) -> Path:
    text = source.read_text()
    for old, new in paths.items():
        text = text.replace(old, new)
    target.write_text(text)
    return target


def _on_loopback(args: list[str], ports: dict[str, dict[int, int]], name: str,
                 config: Path) -> list[str]:
    """A compose command with its container ports, host names and paths
    turned into this machine's: each service its own free ports."""
    mapped = []
    for arg in args:
        if arg == "/etc/olivia/olivia.toml":
            arg = str(config)
        elif arg == "0.0.0.0":
            arg = "127.0.0.1"
        elif arg.isdigit() and int(arg) in ports[name]:
            arg = str(ports[name][int(arg)])
        else:  # peers: n1:5454,... -> 127.0.0.1:<n1's line port>
            arg = re.sub(r"\b(n\d):(\d+)\b",
                         lambda m: f"127.0.0.1:{ports[m.group(1)][int(m.group(2))]}", arg)
        mapped.append(arg)
    return mapped


def _health(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=DEADLINE) as answer:
        status: int = answer.status
        return status


def test_the_compose_nodes_form_a_cluster_as_plain_processes(tmp_path: Path) -> None:
    services = _compose_services()
    config = _local_config(DEPLOY / "docker" / "olivia.toml", tmp_path / "olivia.toml",
                           _secrets(tmp_path))
    ports = {name: {5454: free_port(), 6379: free_port(), 8080: free_port()}
             for name in services}
    with ExitStack() as stack:
        nodes = {}
        for name in ("n1", "n2", "n3"):  # depends_on: n1 first
            args = _on_loopback(list(services[name]["command"]), ports, name, config)
            node = OliviaProcess(args)
            stack.callback(node.close)
            nodes[name] = node.start()

        def formed() -> bool:
            for name in nodes:
                with LineClient(ports[name][5454]) as client:
                    assert client.request(f"AUTH {PASSWORD}") == b":AUTHED"
                    if info_of(client)["peers"] != "2":
                        return False
            return True

        wait_until(formed, what="the compose file's three nodes to form a cluster")
        assert all(_health(ports[name][8080]) == 200 for name in nodes)
        with LineClient(ports["n1"][5454]) as client:
            assert client.request("GET x").startswith(b":ERR NOAUTH")  # the secret password


def test_the_systemd_sample_config_serves(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path)
    (tmp_path / "peers").write_text("")
    line, http, resp = free_port(), free_port(), free_port()
    credentials = "/run/credentials/olivia.service/"
    config = _local_config(DEPLOY / "systemd" / "olivia.toml", tmp_path / "olivia.toml", {
        f"{credentials}password": secrets["/run/secrets/olivia_password"],
        f"{credentials}cluster-secret": secrets["/run/secrets/olivia_cluster_secret"],
        "/etc/olivia/peers": str(tmp_path / "peers"),
        '"0.0.0.0"': '"127.0.0.1"', "port = 5454": f"port = {line}",
        "port = 8080": f"port = {http}", "port = 6379": f"port = {resp}"})
    unit = (DEPLOY / "systemd" / "olivia.service").read_text()
    exec_start = _unit_section(unit, "Service")["ExecStart"]
    args = shlex.split(exec_start)[1:]  # the unit's own flags
    assert args == ["--config", "/etc/olivia/olivia.toml"]
    # --port as the config has it: the test helper would otherwise add --port 0
    node = OliviaProcess(["--config", str(config), "--port", str(line)])
    try:
        node.start()
        with LineClient(line) as client:
            assert client.request("GET k").startswith(b":ERR NOAUTH")
            assert client.request(f"AUTH {PASSWORD}") == b":AUTHED"
            assert client.request("SET from:systemd") == b":SAT from:systemd"
        assert _health(http) == 200
    finally:
        node.close()
