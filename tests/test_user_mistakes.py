"""A new user's mistakes, each answered by the CLI (a subprocess, as a person runs it) with
one line saying what to do, exit code 2 (a usage or configuration error) and no traceback:
a bad --date, a misspelt config key, an unknown id to review, an unwritable output folder,
a missing provider key (found by the pre-flight before the first image), an unknown
category to reserve, a webhook or Apprise URL with a misspelt scheme."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.test_hostile_input import PROJECT_ROOT, cli


def _config(folder: Path, text: str = "") -> Path:
    """``folder/content-pipeline.yaml``: the shipped templates, images under ``folder/output``, then ``text``."""
    path = folder / "content-pipeline.yaml"
    path.write_text(f"templates_dir: {PROJECT_ROOT / 'templates'}\n" + ("" if "output_dir" in text else "output_dir: output\n") + text)
    return path


def _run(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, cwd=folder, env={"CONTENT_PIPELINE_CONFIG": str(folder / "content-pipeline.yaml"), **env})


def _the_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one non-empty line of stderr (stdout empty), no traceback, exit ``code``."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and not result.stdout.strip(), (result.stdout, result.stderr)
    assert result.returncode == code, (result.returncode, result.stderr)
    return lines[0]


@pytest.mark.parametrize("args", [("run", "daily", "--date", "2026-13-01"), ("report", "--since", "21/11/2026")])
def test_a_bad_date_says_the_format(tmp_path: Path, args: tuple[str, ...]) -> None:
    _config(tmp_path)
    line = _the_line(_run(tmp_path, *args))
    assert line.startswith(f"error: {args[-1]!r} is not a date: write it as YYYY-MM-DD"), line


def test_a_misspelt_config_key_gets_its_line_and_the_close_key(tmp_path: Path) -> None:
    from config.settings import load_settings
    from domain.errors import ConfigError

    path = _config(tmp_path, "chian: [openai]\n")
    line = _the_line(_run(tmp_path, "config", "show"))
    assert line == f"error: {path}:3: unknown key 'chian' = ['openai'] — did you mean 'chain'?", line
    # a nested key: the keys of its own section are the candidates
    path.write_text("budget:\n  daly_usd: 3\nproviders:\n  openai:\n    modle: gpt-image-1\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert f"{path}:2: unknown key 'budget.daly_usd' = 3 — did you mean 'daily_usd'?" in str(error.value)
    assert f"{path}:5: unknown key 'providers.openai.modle' = 'gpt-image-1' — did you mean 'model'?" in str(error.value)


def test_reviewing_an_unknown_id_says_where_the_ids_are(tmp_path: Path) -> None:
    _config(tmp_path)
    line = _the_line(_run(tmp_path, "review", "approve", "abc123"))
    assert line == "error: no image 'abc123' in review: content-pipeline review list shows the ids"


def test_an_unwritable_output_folder_is_said_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")  # refused even to root
    _config(tmp_path, "output_dir: blocker/output\n")
    line = _the_line(_run(tmp_path, "run", "daily", "--date", "2026-11-21", CONTENT_PIPELINE_REUSE_SERVER="0"))
    assert f"output_dir {tmp_path / 'blocker' / 'output'} cannot be written (Not a directory)" in line
    assert "set output_dir in the configuration to a writable folder" in line


def test_a_missing_provider_key_stops_the_run_before_the_first_image(tmp_path: Path) -> None:
    _config(tmp_path, "chain: [openai, placeholder]\n")
    line = _the_line(_run(tmp_path, "run", "daily", "--date", "2026-11-21", OPENAI_API_KEY="", CONTENT_PIPELINE_REUSE_SERVER="0"))
    assert line.startswith("error: OPENAI_API_KEY is not set: the chain's provider openai cannot run; set it in the environment or .env"), line
    assert not (tmp_path / "output" / "placeholder").exists() and not (tmp_path / "output" / "content").exists()


def test_the_preflight_warns_and_goes_on_when_another_real_provider_can_run(tmp_path: Path) -> None:
    from cli.doctor import preflight
    from config.secrets import Secrets
    from config.settings import load_settings

    path = _config(tmp_path, "chain: [openai, automatic1111, placeholder]\nproviders:\n  automatic1111:\n    enabled: true\n")
    settings = load_settings(path)
    problem, warnings = preflight(settings, Secrets(provider_secrets={}))
    assert problem is None and len(warnings) == 1
    assert warnings[0].startswith("OPENAI_API_KEY is not set") and warnings[0].endswith("(the chain goes on with automatic1111)")


def test_an_unknown_category_to_reserve_names_the_close_one_and_the_known(tmp_path: Path) -> None:
    _config(tmp_path)
    line = _the_line(_run(tmp_path, "reserve", "--category", "fod"))
    assert line == "error: unknown category 'fod' — did you mean 'food'? known: architecture, food, landscapes, products"


def test_a_misspelt_webhook_scheme_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    path = _config(tmp_path, "delivery:\n  webhooks:\n    - url: htps://example.com/hook\n")
    line = _the_line(_run(tmp_path, "config", "show"))
    assert line.startswith(f"error: {path}:5: field 'delivery.webhooks.0.url' = 'htps://example.com/hook'") and "scheme 'htps' is not 'https'" in line
    doctor = _run(tmp_path, "doctor")
    assert doctor.returncode == 2 and "scheme 'htps'" in doctor.stdout and "Traceback" not in doctor.stderr


def test_a_misspelt_apprise_scheme_is_refused_without_echoing_the_url(tmp_path: Path) -> None:
    _config(tmp_path)
    line = _the_line(_run(tmp_path, "config", "show", APPRISE_URLS="json://alerts.example htps://token-1234@example.com"))
    assert line == "error: environment APPRISE_URLS entry #2: scheme 'htps' is not 'https': write https://..." and "token-1234" not in line
