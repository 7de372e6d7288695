"""The actions notebook in a real browser: Voila serves it, Playwright drives Debian's Chromium.

The test starts a demo simulator in this process and hands its address to the notebook kernel
through ``PVEKIT_SIM_URLS``/``PVEKIT_SIM_PASSWORD``, so it can check the simulator's state
directly after acting through the page. Run it alone with ``pytest -m browser``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _browser import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from pvekit.sim import Simulator

# Voila executes the whole notebook before the page is live: about 40-60 s on an idle 2-core
# machine, much longer when the machine is busy, hence the generous timeouts.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]
PAGE_TIMEOUT_MS = 240_000
STEP_TIMEOUT_MS = 90_000

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "03-actions.ipynb"
PANEL = ".pvekit-guest-panel:not(.pvekit-read-only)"
VICTIM_VMID = 100  # web-01, running on pve1 of the prod cluster in the demo scenario
VICTIM_NAME = "web-01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"voila exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"voila did not listen on port {port}")


@pytest.fixture
def sim() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    with Simulator("demo", task_scale=0.2) as s:
        yield s


@pytest.fixture
def voila(sim: Simulator, tmp_path: Path) -> Iterator[str]:
    if shutil.which("voila") is None and not _has_module("voila"):
        pytest.fail("voila is not installed (pip install -e '.[test]')")
    port = _free_port()
    env = dict(os.environ)
    env["PVEKIT_SIM_URLS"] = ",".join(f"{name}={c.url}" for name, c in sim.clusters.items())
    env["PVEKIT_SIM_USER"] = "root@pam"
    env["PVEKIT_SIM_PASSWORD"] = sim["prod"].connect_kwargs("root")["password"]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    log = (tmp_path / "voila.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--show_tracebacks=True",
            str(NOTEBOOK),
        ],
        cwd=str(ROOT),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kernel goes down with it
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_listening(port, proc)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_stop_a_running_vm_from_the_browser(voila: str, sim: Simulator, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing (apt-get install chromium)"
    guest = sim["prod"].state.guests[VICTIM_VMID]
    assert guest.name == VICTIM_NAME and guest.status == "running"
    shot = Path(os.environ.get("PVEKIT_SCREENSHOT_DIR", str(tmp_path))) / "actions-panel.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            try:
                _stop_through_the_page(page, voila, guest)
            except Exception:
                page.screenshot(path=str(shot.with_name("actions-panel-failure.png")))
                log = (tmp_path / "voila.log").read_text(errors="replace")[-3000:]
                print(f"voila log tail:\n{log}")
                raise
            page.screenshot(path=str(shot), full_page=True)
            # The dashboard's FigureWidgets render too (plotly through anywidget in Voila).
            charts = page.locator(".pvekit-dashboard .js-plotly-plot")
            charts.first.wait_for(state="attached", timeout=STEP_TIMEOUT_MS)
            assert charts.count() >= 3
            page.wait_for_function(  # drawn with data, not empty axes
                "() => document.querySelectorAll('.pvekit-dashboard .js-plotly-plot g.trace')"
                ".length >= 3",
                timeout=STEP_TIMEOUT_MS,
            )
            dashboard = page.locator(".pvekit-dashboard")
            dashboard.scroll_into_view_if_needed()
            dashboard.screenshot(path=str(shot.with_name("dashboard.png")))
            assert "prod" in page.locator(".pvekit-connection-status").inner_text()
        finally:
            browser.close()
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stops = [r for r in sim["prod"].requests if r.method == "POST" and r.path.endswith("/stop")]
    assert [r.path for r in stops] == [f"/nodes/pve1/qemu/{VICTIM_VMID}/status/stop"]


def _stop_through_the_page(page: Page, url: str, guest: Any) -> None:
    """Select the running VM, press Stop, check and accept the confirmation, see it stopped."""
    page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
    select = page.locator(f"{PANEL} .pvekit-guest-list select")
    select.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('.pvekit-guest-list select option').length > 0",
        timeout=PAGE_TIMEOUT_MS,
    )
    index = select.evaluate(
        "(s, name) => [...s.options].findIndex("
        "o => o.textContent.replace(/\\u00a0/g, ' ').includes(' ' + name + ' '))",
        VICTIM_NAME,
    )
    assert index >= 0, "the running VM is not in the list"
    label = select.evaluate("(s, i) => s.options[i].textContent", index)
    assert "running" in label
    select.select_option(index=index)

    stop = page.locator(f"{PANEL} button.pvekit-action-stop")
    page.wait_for_function(
        "(sel) => { const b = document.querySelector(sel); return b && !b.disabled; }",
        arg=f"{PANEL} button.pvekit-action-stop",
        timeout=STEP_TIMEOUT_MS,
    )
    assert page.locator(f"{PANEL} button.pvekit-action-start").is_disabled()
    stop.click()

    box = page.locator(f"{PANEL} .pvekit-confirm-box")
    box.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    text = box.inner_text()
    assert VICTIM_NAME in text and "profile prod" in text and "node pve1" in text
    assert guest.status == "running", "stopped before the confirmation"
    page.locator(f"{PANEL} button.pvekit-confirm").click()

    page.wait_for_function(
        """([sel, name]) => [...document.querySelectorAll(sel)].some(o => {
               const t = o.textContent.replace(/\\u00a0/g, ' ');
               return t.includes(' ' + name + ' ') && t.includes(' stopped ');
           })""",
        arg=[f"{PANEL} .pvekit-guest-list select option", VICTIM_NAME],
        timeout=STEP_TIMEOUT_MS,
    )
    assert guest.status == "stopped"
    task = page.locator(f"{PANEL} .pvekit-task").first
    assert "stop" in task.inner_text()
