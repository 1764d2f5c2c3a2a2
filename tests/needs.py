"""Tests that need a tool outside Python (Chromium, PostgreSQL): skipped with what is missing
and how to get it, except under ``CI=true`` (set by GitHub Actions and most CI services,
https://docs.github.com/en/actions/reference/variables-reference), where a missing tool
fails the test: CI must run every test, never report a skip as a pass."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from tests.cdp import chromium_binary

CHROMIUM_MISSING = "chromium is not installed (needed for the browser tests): apt-get install chromium (.ci/run installs it)"


def in_ci() -> bool:
    """True when the ``CI`` environment variable is ``true`` (any case) or ``1``."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def missing(reason: str) -> NoReturn:
    """Skip the running test for ``reason``; fail it instead under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{reason} [CI=true: a missing tool fails the test instead of skipping it]", pytrace=False)
    pytest.skip(reason)


def require_chromium() -> str:
    """The Chromium binary's path, or skip (fail under CI=true) naming what is missing and how to get it."""
    binary = chromium_binary()
    if binary is None:
        missing(CHROMIUM_MISSING)
    return binary
