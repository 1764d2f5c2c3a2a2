"""A Prefect setting Prefect cannot parse is one line naming the variable, exit 2, from the
run commands (a subprocess each: Prefect reads its settings on its first import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    base.update(PYTHONPATH=str(ROOT), CONTENT_PIPELINE_REUSE_SERVER="0", **env)
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "abc", "valid integer"),
        ("PREFECT_LOGGING_LEVEL", "LOUD", "'DEBUG', 'INFO'"),
    ],
)
@pytest.mark.parametrize("args", [["run", "adhoc", "pasta-dish"], ["run", "daily", "--date", "2026-11-21"]])
def test_a_bad_prefect_setting_is_one_line_naming_the_variable(make_config, tmp_path: Path, variable: str, value: str, said: str, args: list[str]) -> None:
    config = str(make_config())
    result = run_cli(args, tmp_path, CONTENT_PIPELINE_CONFIG=config, PREFECT_HOME=str(tmp_path / "prefect-home"), **{variable: value})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {variable}={value!r}: ") and said in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
