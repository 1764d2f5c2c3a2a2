"""Hostile or careless input: every problem a user can cause is one line naming the file,
the field and a shortened value; nothing hangs (each returns within 5 s, a YAML alias bomb
included), nothing prints a traceback, and an oversize text never crashes a batch."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import FAIL_FAST_S, app
from domain.errors import ConfigError, TemplateError
from config.settings import load_settings
from domain.templates import TemplateLibrary, load_template
from domain.yamlio import load_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOMB = (
    "\n".join(
        ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    )
    + "\n"
)


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``, failing the test when it takes longer than ``seconds`` (a hang)."""
    started = time.monotonic()
    try:
        return call()
    finally:
        assert time.monotonic() - started < seconds, f"took {time.monotonic() - started:.1f} s"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it (the console script's code path)."""
    # the user's CONTENT_PIPELINE_* settings are left out, but not the suite's REUSE_SERVER=0
    # (tests/conftest.py): a test never starts a background Prefect server that outlives it
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONTENT_PIPELINE_") or k == "CONTENT_PIPELINE_REUSE_SERVER"}
    environment.update({"PYTHONPATH": str(PROJECT_ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=180, env=environment, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    return folder


@pytest.mark.parametrize("where", ["template", "schedules", "config"])
def test_yaml_alias_bomb_is_refused_at_once(tmp_path: Path, library: Path, where: str) -> None:
    target = {"template": library / "food" / "bomb.yaml", "schedules": library / "schedules.yaml", "config": tmp_path / "content-pipeline.yaml"}[where]
    target.write_text(BOMB)
    if where == "config":
        error = within(5, lambda: pytest.raises(ConfigError, load_settings, target))
    else:
        error = within(5, lambda: TemplateLibrary.validate(library))[1]
        error = "\n".join(error)
    text = str(error.value) if hasattr(error, "value") else error
    assert f"{target}:2: invalid YAML: alias *a refused" in text
    assert len(text) < 400


def test_templates_validate_reports_a_bomb_in_one_line(tmp_path: Path, library: Path) -> None:
    (library / "food" / "bomb.yaml").write_text(BOMB)
    config = tmp_path / "content-pipeline.yaml"
    config.write_text(yaml.safe_dump({"templates_dir": str(library), "output_dir": "out"}))
    result = cli("templates", "validate", env={"CONTENT_PIPELINE_CONFIG": str(config)})
    assert result.returncode == 2
    assert "bomb.yaml:2: invalid YAML: alias *a refused" in one_line_error(result)


def test_duplicate_keys_non_finite_numbers_and_bad_utf8(tmp_path: Path) -> None:
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text("name: a\nprompt: soup\nprompt: stew\n")
    with pytest.raises(TemplateError, match=r"dup.yaml:3: invalid YAML: duplicate key 'prompt' \(first at line 2\)"):
        within(5, lambda: load_yaml(duplicate, error=TemplateError))
    for text in ("budget:\n  daily_usd: .inf\n", "budget:\n  daily_usd: .nan\n"):
        config = tmp_path / "content-pipeline.yaml"
        config.write_text(text)
        with pytest.raises(ConfigError, match=r"content-pipeline.yaml:2: invalid YAML: non-finite number"):
            load_settings(config)
    latin1 = tmp_path / "food" / "latin1.yaml"
    latin1.parent.mkdir()
    latin1.write_bytes("name: latin1\nprompt: crème brûlée on a plate\n".encode("latin-1"))
    with pytest.raises(TemplateError, match=r"latin1.yaml:2: not valid UTF-8 \(byte \d+: b'\\xe8'\)"):
        load_template(latin1)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("soup {hot|{cold|warm}}", "nested wildcard at character 11"),
        ("soup }hot|cold{", "'}' at character 6 closes no '{'"),
        ("soup {hot|cold", "'{' at character 6 is never closed"),
        ("soup {hot}", "has a single choice"),
        ("soup {hot||cold}", "empty wildcard choice"),
    ],
)
def test_wildcard_syntax_errors(tmp_path: Path, prompt: str, message: str) -> None:
    path = tmp_path / "food" / "w.yaml"
    path.parent.mkdir()
    path.write_text(f'name: w\nprompt: "{prompt}"\n')
    with pytest.raises(TemplateError, match="w.yaml") as caught:
        load_template(path)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1
    assert "w.yaml:2: field 'prompt' = " in str(caught.value)


def test_lengths_are_capped_and_values_shortened(tmp_path: Path) -> None:
    path = tmp_path / "food" / "long.yaml"
    path.parent.mkdir()
    huge = "golden light " * 6000  # ~78 kB: past JPEG's XMP segment if it were embedded
    path.write_text(yaml.safe_dump({"name": "long", "prompt": "a bowl of soup", "styles": [huge], "negative_prompt": huge, "tags": ["x" * 100]}))
    with pytest.raises(TemplateError) as caught:
        within(5, lambda: load_template(path))
    text = str(caught.value)
    assert "field 'styles.0'" in text and "field 'negative_prompt'" in text and "field 'tags.0'" in text
    assert "at most 300 characters" in text and "at most 2000 characters" in text
    assert "(78000 characters)" in text and max(len(line) for line in text.splitlines()) < 400


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"reference_image": "/etc/passwd"}, ":4: field 'reference_image' = '/etc/passwd': Value error, reference_image '/etc/passwd' must be"),
        ({"reference_image": "ok.png", "mask": "../../secret.png"}, ":5: field 'mask' = '../../secret.png': Value error, mask "),
        ({"tags": [f"t{i}" for i in range(5000)]}, ":5: field 'tags' = ['t0', 't1'"),
        ({"mask": "m.png"}, ":1: field '(top level)': Value error, mask and strength need a reference_image"),
    ],
)
def test_each_problem_names_its_own_field(tmp_path: Path, fields: dict[str, Any], expected: str) -> None:
    """A field's own problem is reported at its line and name (never the whole mapping
    as '(top level)'), and a long list is counted in items."""
    path = tmp_path / "food" / "t.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"name": "t", "category": "food", "prompt": "a bowl of soup", **fields}, sort_keys=False))
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    assert expected in str(caught.value), str(caught.value)
    if "tags" in fields:
        assert "(5000 items)" in str(caught.value)
    assert "'name': 't'" not in str(caught.value)  # the mapping itself is never echoed


def test_environment_values_are_one_line(tmp_path: Path) -> None:
    for env, expected in [
        ({"CONTENT_PIPELINE_CHAIN": "a,b"}, "environment CONTENT_PIPELINE_CHAIN = 'a,b': Value error, unknown provider 'a'"),
        ({"CONTENT_PIPELINE_BUDGET__DAILY_USD": "inf"}, "environment CONTENT_PIPELINE_BUDGET__DAILY_USD = 'inf': Input should be a finite number"),
        ({"CONTENT_PIPELINE_BUDGET": "{not json"}, "environment CONTENT_PIPELINE_BUDGET = '{not json': cannot be parsed"),
        ({"CONTENT_PIPELINE_TIMEZONE": "Mars/" + "x" * 100_000}, "environment CONTENT_PIPELINE_TIMEZONE = 'Mars/xxxx"),
        (
            {"CONTENT_PIPELINE_STORAGE_URL": "ftp://files.example/x"},
            "environment CONTENT_PIPELINE_STORAGE_URL = 'ftp://files.example/x': Value error, unsupported scheme 'ftp'",
        ),
        (
            {"CONTENT_PIPELINE_PUBLISHING__BACKUP_URL": "s3://"},
            "environment CONTENT_PIPELINE_PUBLISHING__BACKUP_URL = 's3://': Value error, 's3://': an S3 URL names its bucket",
        ),
        ({"PROMPT_ENCRYPTION_KEY": "short"}, "PROMPT_ENCRYPTION_KEY: not a Fernet key"),
    ]:
        result = cli("config", "show", env=env, cwd=tmp_path)
        assert result.returncode == 2
        line = one_line_error(result)
        assert line.startswith("error: " + expected), line
        assert len(line) < 600, len(line)


def test_a_dotenv_file_that_is_not_utf8_or_holds_a_bad_value_is_one_line(tmp_path: Path) -> None:
    """.env is read by the settings and by Prefect's own settings: a binary one is named with
    its line before either reads it; a bad value is attributed to .env, not to 'configuration'."""
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"OPENAI_API_KEY=sk-test\nCONTENT_PIPELINE_TIMEZONE=UTC\n\xff\xfe garbage\n")
    for args in (("run", "daily"), ("config", "show"), ("policy", "check", "a cat")):
        result = within(SAID_AT_ONCE_S, lambda args=args: cli(*args, cwd=tmp_path))  # type: ignore[misc]
        assert result.returncode == 2, result.stderr
        assert one_line_error(result) == f"error: {dotenv}:3: not valid UTF-8 (byte 53: b'\\xff'); save the file as UTF-8"
    dotenv.write_text("CONTENT_PIPELINE_CONCURRENCY=abc\n")
    result = cli("config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result).startswith("error: .env CONTENT_PIPELINE_CONCURRENCY = 'abc': Input should be a valid integer")


def test_a_good_chain_from_the_environment_with_commas(tmp_path: Path) -> None:
    os.environ["CONTENT_PIPELINE_CHAIN"] = "automatic1111, placeholder"
    try:
        assert load_settings(None).chain == ["automatic1111", "placeholder"]
    finally:
        del os.environ["CONTENT_PIPELINE_CHAIN"]


def test_rich_markup_in_errors_is_printed_as_it_is(tmp_path: Path, library: Path) -> None:
    (library / "food" / "regex.yaml").write_text('name: regex\nprompt: "[bold]x[/bold] {a|[red]b}"\nparameters: {width: "[0-9]+"}\n')
    config = tmp_path / "content-pipeline.yaml"
    config.write_text(yaml.safe_dump({"templates_dir": str(library), "output_dir": "out"}))
    result = CliRunner().invoke(app, ["templates", "validate"], env={"CONTENT_PIPELINE_CONFIG": str(config)})
    assert result.exit_code == 2
    assert "parameters.width' = '[0-9]+'" in result.output


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = cli(
        "history",
        env={"CONTENT_PIPELINE_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none", "CONTENT_PIPELINE_OUTPUT_DIR": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith("error: database: ") and "127.0.0.1" in line and "port 1" in line


#: A bound that tells "said at once" (the command line's 2 s fail-fast wait, plus start-up)
#: from a hang (SQLite's 30 s busy timeout, a connect that never ends), with room for a loaded machine.
SAID_AT_ONCE_S = 20


def test_locked_database_is_one_line(tmp_path: Path) -> None:
    """A file another program holds with an exclusive lock (readers stopped too)."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE held (x)")
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the lock (SQLite busy timeout: 30 s)
    try:
        result = within(SAID_AT_ONCE_S, lambda: cli("history", env={"CONTENT_PIPELINE_DATABASE_URL": f"sqlite:///{path}"}, cwd=tmp_path))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert one_line_error(result) == (
        f"error: database {path} is locked by another program (waited {FAIL_FAST_S:g} s): let it finish or stop it, then run again"
    )


@pytest.mark.parametrize("command", [["run", "daily", "--date", "2026-12-01"], ["review", "list"], ["db", "current"]])
def test_a_write_lock_held_on_the_pipelines_database_is_said_at_once(tmp_path: Path, command: list[str]) -> None:
    """The pipeline's own (WAL) database, at the newest schema, while another program keeps
    a write transaction open (``sqlite3 db`` then ``BEGIN IMMEDIATE;``): readers could go
    on, writers would wait 30 s; the command line says so within its 2 s instead."""
    from storage.db import Database

    path = tmp_path / "out" / "content-pipeline.db"
    Database(f"sqlite:///{path}").dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    env = {"CONTENT_PIPELINE_OUTPUT_DIR": str(tmp_path / "out"), "PREFECT_API_URL": ""}
    try:
        result = within(SAID_AT_ONCE_S, lambda: cli(*command, env=env, cwd=tmp_path))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert f"error: database {path} is locked by another program (waited {FAIL_FAST_S:g} s)" in one_line_error(result)
    # the lock gone, the same command works (a run of the offline defaults exits 1 for its placeholders)
    again = cli(*command, env=env, cwd=tmp_path)
    assert "locked" not in again.stderr and "Traceback" not in again.stderr, again.stderr


def test_a_database_server_that_never_answers_is_one_line(tmp_path: Path) -> None:
    """A PostgreSQL address where something accepts the connection and never speaks
    (a firewall, a hung server): libpq's connect_timeout ends the wait."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = within(
            SAID_AT_ONCE_S,
            lambda: cli(
                "history",
                env={"CONTENT_PIPELINE_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/none", "CONTENT_PIPELINE_OUTPUT_DIR": str(tmp_path)},
                cwd=tmp_path,
            ),
        )
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith("error: database: ") and "timeout" in line, line


def test_oversize_provenance_never_breaks_an_encoding(tmp_path: Path) -> None:
    """A prompt far past JPEG's 65,502-byte XMP segment (from a row written by hand):
    every format is written, the embedded copy is cut, the sidecar keeps it whole."""
    from types import SimpleNamespace

    from config.imaging import RenditionConfig
    from imaging.postprocess import make_renditions
    from imaging.provenance import MAX_XMP_BYTES, Provenance, read_provenance, sidecar
    from tests.servers import photo

    prompt = "a very long prompt " * 10_000  # 190 kB
    provenance = Provenance(image_id="big", prompt=prompt, negative_prompt=prompt)
    assert len(provenance.xmp()) <= MAX_XMP_BYTES  # even the uncut copy falls back to no prompt
    original = tmp_path / "o.png"
    original.write_bytes(photo(128, 128))
    specs = [RenditionConfig(name=f, width=64, height=64, format=f) for f in ("jpeg", "webp", "avif", "png")]
    files = within(30, lambda: make_renditions(original, specs, tmp_path / "out", provenance=provenance.published()))
    for item in files:
        found = read_provenance(item.path)
        assert found["truncated"] == "prompt,negative_prompt" and len(found.get("prompt", "")) <= 4000
    row = SimpleNamespace(
        idempotency_key="k",
        generated_at=None,
        num_inference_steps=30,
        guidance_scale=7.5,
        width=64,
        height=64,
        tags=[],
        quality_score=None,
        quality_metrics=None,
        phash=None,
    )
    assert prompt in sidecar(provenance, row=row, files=[]).decode()


def _special(kind: str, path: Path, tmp_path: Path) -> None:
    """Make ``path`` a FIFO, a directory, a device (a symlink to /dev/zero) or a symlink to a file outside."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        outside = tmp_path / "elsewhere.yaml"
        outside.write_text('name: elsewhere\ncategory: food\nprompt: "a plate"\n')
        path.symlink_to(outside)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_special_file_as_the_config_is_one_line_not_a_hang(tmp_path: Path, kind: str) -> None:
    config = tmp_path / "content-pipeline.yaml"
    _special(kind, config, tmp_path)
    result = cli("templates", "validate", env={"CONTENT_PIPELINE_CONFIG": str(config)})  # timeout: a safety net
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith("error: ") and "not a regular file" in line, line  # the device: named as /dev/zero


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "symlink"])
def test_a_special_template_file_is_one_line_not_a_hang(tmp_path: Path, library: Path, kind: str) -> None:
    target = library / "food" / "special.yaml"
    _special(kind, target, tmp_path)
    config = tmp_path / "content-pipeline.yaml"
    config.write_text(yaml.safe_dump({"templates_dir": str(library), "output_dir": "out"}))
    result = cli("templates", "validate", env={"CONTENT_PIPELINE_CONFIG": str(config)})
    assert result.returncode == 2
    line = one_line_error(result)
    expected = "outside the templates folder" if kind in ("symlink", "device") else "not a regular file"
    assert str(target) in line and expected in line, line


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_special_file_to_verify_is_one_line_not_a_hang(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "image.png"
    _special(kind, target, tmp_path)
    result = cli("verify", str(target), cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"error: {target}: is a ")
