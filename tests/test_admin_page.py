"""The admin page at ``/`` in a real headless browser (Debian's chromium and
chromium-driver, driven by selenium): every node of a 3-node cluster, the
chart moving, a killed node shown down within 5 s, and the page behind the
password.  Skips when the browser is not installed (``.ci/run`` installs
it when it can).

``OLIVIA_ADMIN_SCREENSHOT=docs/admin-page.png pytest tests/test_admin_page.py``
also saves the screenshot docs/http.md shows.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver

from tests.helpers import LineClient, config_flag, running_cluster, running_node, wait_until
from tests.test_http import Http, http_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver; .ci/run does when it runs as root)")


@contextmanager
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1500,1000", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)  # the last one: the browser reaches loopback only
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER or "")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def rows(driver: webdriver.Chrome) -> dict[str, str]:
    """node name -> the state its row shows."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll('#nodes tr'))"
        ".map(tr => [tr.dataset.node, tr.dataset.state]);")
    return dict(found)


def chart_points(driver: webdriver.Chrome) -> int:
    return int(driver.execute_script(
        "return document.getElementById('ops-chart').dataset.points;"))


@contextmanager
def load(port: int) -> Iterator[None]:
    """SETs to one node from a thread, so its ops/s are not zero."""
    stop = threading.Event()

    def writer() -> None:
        with LineClient(port) as client:
            number = 0
            while not stop.is_set():
                client.request(f"SET admin{number % 500}:v")
                number += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def test_the_page_shows_every_node_the_chart_moves_and_a_killed_node_goes_down() -> None:
    with running_cluster(3, "--http-port", "0") as cluster, browser() as driver:
        first, _, third = cluster.nodes
        driver.get(f"http://127.0.0.1:{http_port(first)}/")
        assert driver.title == "Olivia cluster"
        wait_until(lambda: rows(driver) == {"n1": "up", "n2": "up", "n3": "up"},
                   what="three nodes up on the page")
        with load(first.port):
            seen = chart_points(driver)
            wait_until(lambda: chart_points(driver) >= seen + 2, what="the chart to redraw")
            wait_until(lambda: _ops_of(driver, "n1") > 0, what="n1's ops/s to show")
        assert "probes / lookup" in driver.page_source
        screenshot = os.environ.get("OLIVIA_ADMIN_SCREENSHOT")
        if screenshot:
            with load(first.port):
                wait_until(lambda: chart_points(driver) >= seen + 12, timeout=30,
                           what="a few seconds of chart")
                driver.save_screenshot(str(Path(screenshot).resolve()))
        third.signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: rows(driver).get("n3") == "down", timeout=5,
                   what="the killed node to show down")
        assert time.monotonic() - killed < 5
        assert rows(driver)["n2"] == "up"


def _ops_of(driver: webdriver.Chrome, name: str) -> float:
    text = driver.execute_script(
        "const tr = document.querySelector(`#nodes tr[data-node='${arguments[0]}']`);"
        "return tr ? tr.children[5].textContent : '';", name)
    try:
        return float(str(text).replace(",", ""))
    except ValueError:
        return 0.0


def test_the_page_asks_for_the_password(tmp_path: Path) -> None:
    flags = config_flag(tmp_path, '[auth]\npassword = "pagepass"\n')
    with running_node("--http-port", "0", *flags) as node, browser() as driver:
        status, headers, _ = Http(node)("GET", "/")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        port = http_port(node)
        driver.get(f"http://admin:pagepass@127.0.0.1:{port}/")
        wait_until(lambda: list(rows(driver).values()) == ["up"],
                   what="the page to read the cluster with the password")
