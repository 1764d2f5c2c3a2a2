"""Secrets and the messages a person meets first: an empty key is no key (doctor fails
naming it, the chain never calls the provider), one-line errors with what to do,
``providers list --all``, ``history`` and ``share`` saying what is true."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.prefect_stack import free_port
from tests.providers.servers import OpenAIServer
from tests.rows import flow_summary

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_empty_environment_values_are_no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from config.secrets import Secrets

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())  # every key empty, as copied
    monkeypatch.setenv("FAL_KEY", "")
    secrets = Secrets()
    assert secrets.lookup(["OPENAI_API_KEY"]) is None and secrets.lookup(["FAL_KEY"]) is None
    assert secrets.apprise_urls is None
    assert secrets.known_values() == []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    assert Secrets().lookup(["OPENAI_API_KEY"]) == "sk-real"


def test_doctor_fails_naming_the_missing_key(make_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from cli.doctor import FAIL, OK, run_checks

    monkeypatch.setenv("OPENAI_API_KEY", "")
    with OpenAIServer() as openai:
        make_config(chain=["openai", "placeholder"], providers={"openai": {"base_url": f"{openai.url}/v1"}})
        result = runner.invoke(app, ["doctor", "--timeout", "5"])
        assert result.exit_code == 1, result.output
        assert "OPENAI_API_KEY not set" in result.output
        checks = {c.name: c for c in run_checks(timeout_s=5)}
        assert checks["provider openai"].status == FAIL
        assert "OPENAI_API_KEY not set" in checks["provider openai"].detail
        assert "set OPENAI_API_KEY" in checks["provider openai"].fix
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
        assert {c.name: c for c in run_checks(timeout_s=5)}["provider openai"].status == OK


@pytest.mark.usefixtures("prefect_server")
def test_chain_skips_a_provider_without_its_key_and_never_calls_it(make_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    monkeypatch.setenv("OPENAI_API_KEY", "")
    with OpenAIServer() as openai:
        make_config(chain=["openai", "placeholder"], providers={"openai": {"base_url": f"{openai.url}/v1"}})
        summary = flow_summary(generate(template="pasta-dish", count=2, batch="nokey", return_state=True))
        assert openai.requests == []  # never called
    assert [i.provider for i in summary.images] == ["placeholder", "placeholder"]
    db = get_runtime().db
    for image in db.images():
        calls = [(a.provider, a.status, a.error_class, a.error) for a in db.attempts(image.id)]
        assert calls[0] == ("openai", "skipped", "missing_secret", "OPENAI_API_KEY not set")
    # the alert names the variable
    from reporting.alerts import rule_placeholder_used

    [alert] = rule_placeholder_used(db, get_runtime().settings)
    assert "openai: OPENAI_API_KEY not set" in alert.message


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    base.update(PYTHONPATH=str(ROOT), **{"CONTENT_PIPELINE_REUSE_SERVER": "0", **env})
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=300)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr + result.stdout
    return lines[0]


def test_serve_and_run_without_a_reachable_server_say_what_to_do(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = str(make_config())
    served = _cli(["serve"], tmp_path, CONTENT_PIPELINE_CONFIG=config)
    assert served.returncode == 1
    assert "prefect server start" in _one_error_line(served) and "PREFECT_API_URL" in _one_error_line(served)
    closed = f"http://127.0.0.1:{free_port()}/api"
    for args in (["serve"], ["run", "daily", "--date", "2026-11-21"]):
        result = _cli(args, tmp_path, CONTENT_PIPELINE_CONFIG=config, PREFECT_API_URL=closed)
        assert result.returncode == 1, result.stderr
        line = _one_error_line(result)
        assert f"cannot reach the Prefect server at {closed}" in line and "prefect server start" in line


def test_temporary_server_that_does_not_start_names_the_setting(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = str(make_config())
    result = _cli(
        ["run", "adhoc", "pasta-dish"],
        tmp_path,
        CONTENT_PIPELINE_CONFIG=config,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0",
    )
    assert result.returncode == 1
    line = _one_error_line(result)
    assert "temporary server did not start" in line and "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in line


def test_a_run_reuses_a_server_already_running_and_says_so(make_config, tmp_path: Path, prefect_server: str) -> None:  # type: ignore[no-untyped-def]
    """No PREFECT_API_URL, a Prefect server answering where ``prefect server start`` listens
    (here the session's test server, named by CONTENT_PIPELINE_LOCAL_SERVER): the run uses
    it instead of starting a temporary one, says so, and its flow run is on that server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    config = str(make_config())
    base = prefect_server.removesuffix("/api")
    named = FlowRunFilter(name=FlowRunFilterName(any_=["generate-sneaker"]))
    with get_client(sync_client=True) as client:
        before = client.count_flow_runs(flow_run_filter=named)
    result = _cli(["run", "adhoc", "sneaker"], tmp_path, CONTENT_PIPELINE_CONFIG=config, CONTENT_PIPELINE_REUSE_SERVER="1", CONTENT_PIPELINE_LOCAL_SERVER=base)
    # offline: a placeholder, so the run is not complete (exit code 1); the point here is where it ran
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 of 1 images not done as real content: 1 placeholder" in " ".join(result.stderr.split())
    assert f"using the Prefect server already running at {base}" in result.stdout
    with get_client(sync_client=True) as client:
        assert client.count_flow_runs(flow_run_filter=named) == before + 1
    off = _cli(
        ["run", "adhoc", "sneaker"],
        tmp_path,
        CONTENT_PIPELINE_CONFIG=config,
        CONTENT_PIPELINE_REUSE_SERVER="0",
        CONTENT_PIPELINE_LOCAL_SERVER=base,
        PREFECT_HOME=str(tmp_path / "own-home"),
    )
    assert off.returncode == 1 and "already running" not in off.stdout, off.stdout + off.stderr


def test_a_run_with_no_server_starts_one_in_the_background_and_server_stop_ends_it(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No PREFECT_API_URL and nothing answering where ``prefect server start`` listens (a
    free port here): the first run starts a detached Prefect server, says so on its first
    line and records its PID under PREFECT_HOME; the next run reuses it; ``server stop``
    ends it (and the finally block makes sure no server outlives the test)."""
    import httpx

    config = str(make_config())
    base = f"http://127.0.0.1:{free_port()}"
    env = dict(
        CONTENT_PIPELINE_CONFIG=config,
        CONTENT_PIPELINE_REUSE_SERVER="1",
        CONTENT_PIPELINE_LOCAL_SERVER=base,
        PREFECT_HOME=str(tmp_path / "home"),
        COLUMNS="400",
    )
    pid_file = tmp_path / "home" / "content-pipeline-server" / "server.pid"
    try:
        first = _cli(["run", "adhoc", "sneaker"], tmp_path, **env)
        assert first.returncode == 1, first.stdout + first.stderr  # offline: a placeholder
        assert first.stdout.splitlines()[0].startswith(f"started a Prefect server in the background at {base}")
        pid = int(pid_file.read_text())
        assert httpx.get(f"{base}/api/health", timeout=5).status_code == 200
        second = _cli(["run", "adhoc", "sneaker"], tmp_path, **env)
        assert second.stdout.splitlines()[0].startswith(f"using the Prefect server already running at {base}")
        assert int(pid_file.read_text()) == pid  # not started twice
    finally:
        stopped = _cli(["server", "stop"], tmp_path, **env)
    assert stopped.returncode == 0 and f"stopped the background Prefect server (PID {pid})" in stopped.stdout
    assert not pid_file.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/api/health", timeout=2)
    again = _cli(["server", "stop"], tmp_path, **env)
    assert "no background Prefect server recorded in" in again.stdout


def test_reuse_off_starts_no_background_server(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """CONTENT_PIPELINE_REUSE_SERVER=0 (the test suite's default): a run uses the
    temporary server and leaves no background server (no PID file) behind."""
    config = str(make_config())
    result = _cli(["run", "adhoc", "sneaker"], tmp_path, CONTENT_PIPELINE_CONFIG=config, PREFECT_HOME=str(tmp_path / "home"), COLUMNS="400")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "background" not in result.stdout
    assert not (tmp_path / "home" / "content-pipeline-server").exists()


def test_template_typo_suggests_the_closest_names(make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    result = runner.invoke(app, ["run", "adhoc", "pasta-dsh"])
    assert result.exit_code == 2
    assert "no template named 'pasta-dsh'" in result.output and "did you mean 'pasta-dish'?" in result.output
    far = runner.invoke(app, ["run", "adhoc", "zzz"])
    assert "known: " in far.output and "sneaker" in far.output


def test_providers_list_all_tells_which_the_chain_uses(make_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from cli.providers import chain_use
    from config.secrets import Secrets
    from config.settings import get_settings

    monkeypatch.setenv("OPENAI_API_KEY", "")
    monkeypatch.setenv("STABILITY_API_KEY", "sk-set")
    make_config(chain=["openai", "stability", "automatic1111", "placeholder"])
    settings, secrets = get_settings(), Secrets()
    assert chain_use("openai", settings, secrets) == "no: OPENAI_API_KEY not set"
    assert chain_use("stability", settings, secrets) == "yes" and chain_use("placeholder", settings, secrets) == "yes"
    assert chain_use("automatic1111", settings, secrets) == "no: providers.automatic1111.enabled is false"
    assert chain_use("replicate", settings, secrets) == "no: not in the chain"
    result = runner.invoke(app, ["providers", "list", "--all"])
    assert result.exit_code == 0, result.output
    from providers.registry import PROVIDERS

    outside = [name for name in PROVIDERS if name not in settings.chain]
    assert outside and result.output.count("no: not in the") == len(outside)
    assert "OPENAI_API_KEY not" in result.output and "sk-set" not in result.output


@pytest.mark.usefixtures("prefect_server")
def test_share_on_a_local_store_promises_no_expiry(make_config) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate

    make_config()
    [image] = flow_summary(generate(template="sneaker", count=1, batch="share", return_state=True)).images
    result = runner.invoke(app, ["share", image.image_id])
    assert result.exit_code == 0, result.output
    # the share lines themselves (a log line another test's handler prints may say anything)
    [header] = [line for line in result.output.splitlines() if line.startswith(f"{image.image_id}: ")]
    assert "valid" not in header and "no expiry" in header, result.output
    assert "file://" in result.output, result.output


def test_no_issue_numbers_in_user_facing_text() -> None:
    import re

    help_texts = [runner.invoke(app, args).output for args in (["--help"], ["ab", "--help"], ["run", "--help"], ["providers", "--help"], ["serve", "--help"])]
    readme = (ROOT / "README.md").read_text()
    for text in [*help_texts, readme]:
        assert not re.search(r"\bissue\s*#?\d", text, re.IGNORECASE), text[:400]


def test_every_dotenv_variable_filled_is_read_as_environment_never_printed(tmp_path: Path) -> None:
    """A .env with every variable of .env.example filled (plus variables of other tools) next
    to the project's own content-pipeline.yaml: commands work and no secret byte is printed."""
    import shutil

    shutil.copy(ROOT / "content-pipeline.yaml", tmp_path / "content-pipeline.yaml")
    (tmp_path / "templates").symlink_to(ROOT / "templates")
    names = [line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line and not line.startswith("#")]
    names += ["DB_PASSWORD", "GITHUB_TOKEN", "CONTENT_PIPELINE_NOT_A_SETTING"]
    values = {name: f"sk-test-{i:02d}-Zq8Rv3Lm9Tx" for i, name in enumerate(names)}
    # a key that is validated gets a valid value of its kind (still never printed)
    values["PROMPT_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(b"Zq8Rv3Lm9Tx-prompt-key-32-bytes!").decode()
    for name in (n for n in names if n.endswith("_URLS")):  # Apprise URLs are checked when loaded: one of their shape
        values[name] = f"json://127.0.0.1:9/{values[name]}"
    (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    for args in (["config", "show"], ["templates", "validate"]):
        result = _cli(args, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        for value in values.values():
            assert value not in result.stdout + result.stderr and "Zq8Rv3Lm9Tx" not in result.stdout + result.stderr


def test_a_bad_secret_shaped_value_is_masked_in_the_error(tmp_path: Path) -> None:
    """A value that fails validation is named by its key, never echoed when it is a secret."""
    (tmp_path / "content-pipeline.yaml").write_text(f"output_dir: out\ntemplates_dir: {ROOT / 'templates'}\n")
    (tmp_path / ".env").write_text("CONTENT_PIPELINE_CONCURRENCY=sk-live-Zq8Rv3Lm9Tx\n")
    result = _cli(["config", "show"], tmp_path)
    assert result.returncode == 2
    assert "CONTENT_PIPELINE_CONCURRENCY" in result.stdout + result.stderr
    assert "Zq8Rv3Lm9Tx" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://editor:hunter2@localhost/content", "the driver of 'mysql' is not installed (no module 'MySQLdb'"),
        ("garbage", "not a database URL"),
        ("foo://x", "unknown database kind 'foo'"),
    ],
)
def test_an_unusable_database_url_is_one_line_naming_key_and_file(make_config, tmp_path: Path, url: str, message: str) -> None:  # type: ignore[no-untyped-def]
    config = make_config(database_url=url)
    result = _cli(["history"], tmp_path, CONTENT_PIPELINE_CONFIG=str(config))
    line = _one_error_line(result)
    assert result.returncode == 2
    assert f"{config}:" in line and "field 'database_url'" in line and message in line, line
    assert "hunter2" not in result.stderr + result.stdout
