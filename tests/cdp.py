"""Headless Chromium driven over the Chrome DevTools Protocol, for UI tests.

``Browser()`` starts ``chromium --headless --remote-debugging-port=0`` with a private
profile, reads the ``DevTools listening on ws://...`` line it prints, opens a page
through the HTTP endpoint ``PUT /json/new`` and talks to that page's websocket
(``websockets``' sync client). Protocol reference:
https://chromedevtools.github.io/devtools-protocol/ (Page.navigate, Runtime.evaluate,
Page.captureScreenshot, Emulation.setDeviceMetricsOverride).

Waits poll a JavaScript condition until it holds: the timeouts are generous upper
bounds for a loaded machine, never what a test measures.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

LISTENING = re.compile(r"DevTools listening on (ws://[^\s]+)")


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class CDPError(RuntimeError):
    """The browser answered a command with an error, or a wait ran out."""


class Browser:
    """One headless Chromium with one page; ``with Browser() as page: page.goto(url)``."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        binary = chromium_binary()
        if binary is None:
            raise CDPError("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="cp-cdp-")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._ids = itertools.count(1)
        self.ws: Any = None

    def __enter__(self) -> Browser:
        from websockets.sync.client import connect

        assert self.process.stderr is not None
        deadline = time.monotonic() + 120
        browser_ws = None
        while time.monotonic() < deadline and browser_ws is None:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                raise CDPError(f"chromium exited with {self.process.returncode}")
            found = LISTENING.search(line)
            if found:
                browser_ws = found.group(1)
        if browser_ws is None:
            raise CDPError("chromium did not print its DevTools endpoint")
        port = int(browser_ws.split(":")[2].split("/")[0])
        target = httpx.put(f"http://127.0.0.1:{port}/json/new?about:blank", timeout=30).json()
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=30)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.ws is not None:
            self.ws.close()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command; return its ``result`` (events received meanwhile are dropped)."""
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == ident:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the page (awaiting a promise)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 90, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; return its value. CDPError with the page's
        text when it never is."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except CDPError:
                value = None
            if value:
                return value
            time.sleep(0.5)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 1500) : ''")
        raise CDPError(f"{what or expression[:80]}: not true after {timeout_s:.0f} s; page text:\n{text}")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the viewport (``width`` x ``height``)."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
