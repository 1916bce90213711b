"""A real browser runs the explorer notebook in JupyterLab and sees a formula.

nbval runs ``notebooks/explorer.ipynb`` without a browser, which checks the Python side of the
widgets. This test checks the rest, as a user meets it: JupyterLab serves a copy of the
notebook, headless Chromium opens it, runs all cells from the Run menu, and the interface
(ipywidgets' front end, MathJax) must render a formula; then a click on the rendered Discover
button must make the kernel search again and show a formula once more. A screenshot is saved
in the test's temporary folder and its path printed (``pytest -s`` shows it).

Needs Playwright's Python package (the ``dev`` extra) and Debian's ``chromium`` package at
``/usr/bin/chromium`` (``apt-get install -y chromium``); Playwright's own browser downloads
are not used. Skipped when either is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explorer.ipynb"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SECONDS = 1000  # Playwright's timeouts are in milliseconds

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium at /usr/bin/chromium "
                       "(apt-get install -y chromium)"),
]

# the rendered formula: the Explorer's HTMLMath, once its R² line is there
FORMULA_SHOWN = """() => [...document.querySelectorAll('.widget-htmlmath-content')]
    .some(e => e.textContent.includes('R²') && e.querySelector('mjx-container'))"""
DISCOVER = "button.jupyter-button:has-text('Discover')"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on a free local port, serving a folder with a copy of the notebook;
    yields the notebook's URL (with the server's token)."""
    served = tmp_path / "root"
    served.mkdir()
    shutil.copy(NOTEBOOK, served / NOTEBOOK.name)
    settings = tmp_path / "settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)  # no "get notified about news?" toast over the notebook
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, CI="1",  # the notebook's smoke switch: a short search
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={served}",
         f"--IdentityProvider.token={token}", "--ServerApp.disable_check_xsrf=True",
         "--ServerApp.allow_root=True", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                       timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n"
                                + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?reset&token={token}"
    finally:
        # the server's own process group: the server and the kernels it started
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _wait_until_idle(page) -> None:
    """Until the kernel is idle and no cell waits to run (no ``[*]`` prompt)."""
    page.wait_for_function(
        """() => document.querySelector(".jp-Notebook-ExecutionIndicator")?.dataset.status
                 === "idle"
            && ![...document.querySelectorAll(".jp-InputPrompt")]
                 .some(e => e.textContent.includes("*"))""", timeout=90 * SECONDS)


def _run_all_cells(page) -> None:
    """Run > Run All Cells, once the notebook has the focus (the menu item is disabled while
    no notebook is the current widget); tried again if no cell starts within 20 s."""
    started = """() => [...document.querySelectorAll(".jp-InputPrompt")]
        .some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))"""
    for attempt in range(3):
        page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first.click()
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator("li[data-command='runmenu:run-all']:not(.lm-mod-disabled)").click()
        try:
            page.wait_for_function(started, timeout=20 * SECONDS)
            return
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")  # close the menu if it is still open


def test_explorer_in_a_browser(jupyterlab, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(jupyterlab)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60 * SECONDS)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60 * SECONDS)  # the kernel has started

            # Run > Run All Cells: imports, the interface, and the cell that presses Discover
            _run_all_cells(page)
            page.wait_for_function(FORMULA_SHOWN, timeout=90 * SECONDS)
            _wait_until_idle(page)
            errors = [text for text in page.locator(".jp-OutputArea-output").all_inner_texts()
                      if "Traceback" in text or "Error displaying widget" in text]
            assert not errors, errors[0][-2000:]

            # a user's click on the rendered button: the kernel searches again (the button is
            # disabled while it does), and the new formula is shown
            button = page.locator(DISCOVER)
            button.scroll_into_view_if_needed()
            button.click()
            sync_api.expect(button).to_be_disabled(timeout=30 * SECONDS)
            sync_api.expect(button).to_be_enabled(timeout=90 * SECONDS)
            page.wait_for_function(FORMULA_SHOWN, timeout=30 * SECONDS)
            sync_api.expect(page.locator(".widget-label").filter(has_text="done in")
                            ).to_have_count(1)

            formula = page.locator(".widget-htmlmath-content").filter(has_text="R²").first
            text = formula.inner_text()
            assert "complexity" in text and formula.locator("mjx-container").count() == 1
            page.locator(".widget-tab").first.scroll_into_view_if_needed()
            screenshot = tmp_path / "explorer.png"
            page.screenshot(path=screenshot)
            print(f"\nscreenshot: {screenshot}")
            assert screenshot.stat().st_size > 10_000
        except Exception:
            failure = tmp_path / "failure.png"
            page.screenshot(path=failure)  # what the browser showed when the test gave up
            print(f"\nscreenshot of the failure: {failure}")
            raise
        finally:
            browser.close()
