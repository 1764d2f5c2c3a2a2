"""A test needing Chromium is skipped, naming what is missing and how to get it; under CI=true it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.needs import require_chromium


@pytest.fixture
def no_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no chromium on PATH


@pytest.mark.usefixtures("no_chromium")
def test_missing_chromium_skips_with_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed.*apt-get install chromium"):
        require_chromium()


@pytest.mark.usefixtures("no_chromium")
@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_missing_chromium_fails_under_ci(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium.*CI=true"):
        require_chromium()


def test_present_chromium_is_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "chromium"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    assert require_chromium() == str(binary)
