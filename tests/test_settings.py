"""Configuration: YAML + environment, secrets only from the environment, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from domain.errors import ConfigError
from config.secrets import Secrets
from config.settings import Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "content-pipeline.yaml"
    path.write_text(text)
    return path


def test_defaults_run_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    assert settings.chain == ["automatic1111", "placeholder"]
    assert settings.providers.automatic1111.enabled is False  # no WebUI expected on a fresh machine
    assert settings.database_url == f"sqlite:///{tmp_path / 'output' / 'content-pipeline.db'}"
    assert settings.storage_url == (tmp_path / "output").as_uri()


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "concurrency: 2\nbudget:\n  daily_usd: 3\n  weekly_usd: 9\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert f"{path}:4" in message
    assert "budget.weekly_usd" in message and "unknown key" in message and "9" in message


def test_bad_value_names_file_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"{path}:1" in str(info.value) and "'timezone'" in str(info.value) and "Mars/Olympus" in str(info.value)


def test_unknown_provider_in_chain(tmp_path: Path) -> None:
    path = write(tmp_path, "chain: [automatic1111, midjourney, placeholder]\n")
    with pytest.raises(ConfigError, match=r"chain.*midjourney"):
        load_settings(path)


def test_placeholder_anywhere_but_last_in_the_chain_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "chain: [placeholder, automatic1111]\n")
    with pytest.raises(ConfigError, match=r"content-pipeline.yaml:1: field 'chain' = .*placeholder must be the last") as info:
        load_settings(path)
    assert len(str(info.value).splitlines()) == 1
    assert load_settings(write(tmp_path, "chain: [automatic1111, placeholder]\n")).chain == ["automatic1111", "placeholder"]


def test_a_run_date_with_no_day_before_is_refused_in_one_line(tmp_path: Path) -> None:
    """0001-01-01 (a deployment parameter or --date): one line, not OverflowError in the rotation."""
    from datetime import date

    from domain.errors import TemplateError
    from domain.templates import TemplateLibrary
    from generation.plan import plan_adhoc, plan_daily, plan_weekly

    library = TemplateLibrary.load(Path(__file__).resolve().parent.parent / "templates")
    for plan in (plan_daily, plan_weekly):
        with pytest.raises(TemplateError, match=r"^run_date 0001-01-01 is outside 1970-01-01\.\.9999-12-30"):
            plan(library.schedules, date(1, 1, 1))
    with pytest.raises(TemplateError, match="run_date 9999-12-31"):
        plan_adhoc("t", "food", 1, date.max, "b")
    assert plan_daily(library.schedules, date(1970, 1, 1))


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "concurrency: 2\nbudget: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: invalid YAML"):
        load_settings(path)


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  automatic1111:\n    password: hunter2\n")
    with pytest.raises(ConfigError, match=r"secret.*environment") as info:
        load_settings(path)
    assert "hunter2" not in str(info.value)


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "budget:\n  daily_usd: 3\n")
    monkeypatch.setenv("CONTENT_PIPELINE_BUDGET__DAILY_USD", "7.5")
    assert load_settings(path).budget.daily_usd == 7.5
    monkeypatch.setenv("CONTENT_PIPELINE_CONCURRENCY", "0")
    with pytest.raises(ConfigError, match="CONTENT_PIPELINE_CONCURRENCY = '0'"):
        load_settings(path)


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "concurrency: 3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONTENT_PIPELINE_CONFIG", raising=False)
    monkeypatch.setenv("HUGGINGFACE_TOKEN", "hf_SECRETSECRETSECRET")
    monkeypatch.setenv("APPRISE_URLS", "json://127.0.0.1:9/hooks/TOPSECRETTOKEN")
    from wiring.runtime import reset_runtime

    reset_runtime()
    result = CliRunner().invoke(app, ["config", "show"])
    reset_runtime()
    assert result.exit_code == 0, result.output
    assert "SECRETSECRET" not in result.output and "TOPSECRETTOKEN" not in result.output
    payload = json.loads(result.output.split("\n", 1)[1])
    assert payload["concurrency"] == 3
    assert payload["secrets"]["HUGGINGFACE_TOKEN"] == "hf_***"


def test_apprise_urls_split() -> None:
    secrets = Secrets(APPRISE_URLS="json://a/b, mailto://u:p@h\nntfy://topic")
    assert secrets.apprise_url_list() == ["json://a/b", "mailto://u:p@h", "ntfy://topic"]


def test_shipped_config_is_the_offline_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parent.parent
    shipped = load_settings(root / "content-pipeline.yaml").model_dump()
    monkeypatch.chdir(root)
    defaults = Settings().model_dump()  # no file at all: the built-in defaults
    assert shipped == defaults
