"""``content-pipeline doctor`` against real things: a Prefect server, PostgreSQL, a loopback
AUTOMATIC1111, Apprise's URL parser; and against closed ports, naming what to fix."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app
from cli.doctor import FAIL, OK, WARN, run_checks
from tests.conftest import a1111_config
from tests.prefect_stack import create_database, drop_database, free_port, pg_url, postgres_available


def _by_name(checks):  # type: ignore[no-untyped-def]
    return {c.name: c for c in checks}


def test_offline_defaults_pass_with_warnings(make_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    make_config()
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # even when a test server is active
        result = CliRunner().invoke(app, ["doctor"])
        checks = _by_name(run_checks())
    assert result.exit_code == 0, result.output
    assert "0 to fix" in result.output and "PREFECT_API_URL is not set" in result.output
    assert checks["prefect api"].status == WARN
    assert checks["python"].status == OK and checks["database"].status == OK and checks["storage"].status == OK
    assert checks["chain"].status == WARN and checks["apprise"].status == WARN
    assert checks["c2pa"].status == WARN and "self-signed" in checks["c2pa"].detail and "untrusted" in checks["c2pa"].detail
    assert "c2pa.trust_anchors" in checks["c2pa"].fix and "c2pa.certificate" in checks["c2pa"].fix


def test_each_broken_piece_is_named_with_its_fix(make_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    closed = free_port()
    make_config(database_url=f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{closed}/nothing", **a1111_config(f"http://127.0.0.1:{closed}"))
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{closed}/api")
    monkeypatch.setenv("APPRISE_URLS", "json://127.0.0.1:9/hook notascheme://x")
    result = CliRunner().invoke(app, ["doctor", "--timeout", "1"])
    assert result.exit_code == 1
    checks = _by_name(run_checks(timeout_s=1))
    assert checks["prefect api"].status == FAIL and "prefect server start" in checks["prefect api"].fix
    assert checks["database"].status == FAIL and "start PostgreSQL" in checks["database"].fix
    assert "s3cret" not in checks["database"].detail and "s3cret" not in result.output
    assert checks["provider automatic1111"].status == FAIL and "enabled: false" in checks["provider automatic1111"].fix
    assert checks["apprise #1"].status == OK and checks["apprise #2"].status == FAIL
    assert "4 to fix" in result.output


def test_everything_reachable_is_ok(make_config, monkeypatch, a1111, prefect_server) -> None:  # type: ignore[no-untyped-def]
    problem = postgres_available()
    assert problem is None, problem
    database = create_database("cp_doctor")
    try:
        monkeypatch.setenv("AUTOMATIC1111_AUTH", "user:pass")
        monkeypatch.setenv("APPRISE_URLS", "json://127.0.0.1:9/hook")
        make_config(database_url=pg_url(database, "psycopg"), scale={"global_limits": True}, **a1111_config(a1111.url))
        checks = _by_name(run_checks())
        assert {name: c.status for name, c in checks.items()} == {
            "python": OK,
            "configuration": OK,
            "templates": OK,
            "prefect api": OK,
            "database": OK,
            "storage": OK,
            "provider automatic1111": OK,
            "provider placeholder": OK,
            "apprise #1": OK,
            "global limits": WARN,  # not created yet: the first run makes them
            "c2pa": WARN,  # the per-installation self-signed signer: untrusted
        }, checks
        assert "prefect gcl create provider-automatic1111" in checks["global limits"].fix
    finally:
        from storage.db import reset_databases

        reset_databases()
        drop_database(database)
