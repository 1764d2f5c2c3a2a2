"""Drive headless Chromium through the Chrome DevTools Protocol (tests only).

``--screenshot`` / ``--dump-dom`` cannot click; a form that opens behind a button (the
Prefect UI's "Resume" modal) needs the protocol: ``Page.navigate``, ``Runtime.evaluate``,
``Page.captureScreenshot`` (https://chromedevtools.github.io/devtools-protocol/), over the
page's WebSocket (``websockets``' sync client).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.chromium import FLAGS, chromium_binary


class Browser:
    """``with Browser() as page: page.goto(url); page.evaluate(js); page.screenshot(path)``."""

    def __init__(self, width: int = 1400, height: int = 1600) -> None:
        self.width, self.height = width, height
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        from websockets.sync.client import connect

        binary = chromium_binary()
        assert binary, "chromium is not installed (.ci/run installs it: apt-get install chromium)"
        self._profile = tempfile.TemporaryDirectory(prefix="cp-cdp-", ignore_cleanup_errors=True)
        flags = [f for f in FLAGS if not f.startswith(("--enable-logging", "--v="))]
        self.process = subprocess.Popen(
            [binary, *flags, "--remote-debugging-port=0", "--remote-allow-origins=*", "--disable-dev-shm-usage",
             f"--user-data-dir={self._profile.name}", f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        port = None
        deadline = time.monotonic() + 60
        assert self.process.stderr is not None
        while port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
        assert port, "Chromium did not open its DevTools port"
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json() if t["type"] == "page"]
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=30)
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        try:
            self.ws.close()
        finally:  # Chromium's helper processes share its process group: end them all
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self._profile.cleanup()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one protocol command; its ``result`` (events in between are skipped)."""
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 60) -> Any:
        """Poll ``expression`` until truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"not true after {timeout_s:.0f} s: {expression[:120]}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
