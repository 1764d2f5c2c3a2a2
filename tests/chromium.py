"""Headless Chromium for tests: load a page, save a screenshot, return its console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]
#: Chromium logs a page's console messages (uncaught exceptions included) as
#: ``...:INFO:CONSOLE:1] "message", source: url (1)`` (older builds: ``CONSOLE(1)]``).
CONSOLE = re.compile(r':(INFO|WARNING|ERROR):CONSOLE[:(]\d+\)?\] "(.*)", source: (.*)')


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(url: str, png: Path, *, width: int = 1280, height: int = 1400, timeout_s: float = 60) -> list[str]:
    """Open ``url`` in a fresh profile, write a ``width`` x ``height`` screenshot to ``png``;
    returns the console messages of the page (errors, warnings and logs)."""
    binary = chromium_binary()
    assert binary, "chromium is not installed (.ci/run installs it: apt-get install chromium)"
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cp-chromium-") as profile:
        result = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}", "--virtual-time-budget=3000", url],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    assert png.is_file(), f"no screenshot written (exit {result.returncode}): {result.stderr[-2000:]}"
    messages = [f"{m.group(1)}: {m.group(2)} ({m.group(3)})" for m in CONSOLE.finditer(result.stderr)]
    messages += [line for line in result.stderr.splitlines() if "net::ERR_" in line or "Failed to load resource" in line]
    return messages
