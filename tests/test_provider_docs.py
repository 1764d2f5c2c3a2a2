"""Providers are plugins: the registry discovers them, and the README table, the YAML
examples and .env.example are generated from their classes (cli/provider_docs.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.provider_docs import ROOT, generated
from providers.registry import PROVIDERS, discover, provider_class, secret_env_names

runner = CliRunner()
DOCS = ("README.md", "content-pipeline.yaml", ".env.example")


def test_the_checked_in_docs_are_the_generated_ones() -> None:
    stale = [f.path for f in generated(ROOT) if f.current != f.expected]
    assert stale == [], f"{stale} drifted from the provider classes: run content-pipeline providers docs --write"


def test_every_secret_and_provider_is_documented() -> None:
    env = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"\n{names[0]}=\n" in env for names in secret_env_names().values())
    assert "\nBFL_API_KEY=\n" in env and "\nPROMPT_ENCRYPTION_KEY=\n" in env and "\nC2PA_PRIVATE_KEY=\n" in env
    assert all(f"| `{name}` |" in readme for name in PROVIDERS)


def _copy(tmp_path: Path) -> Path:
    for name in DOCS:
        shutil.copyfile(ROOT / name, tmp_path / name)
    return tmp_path


def test_check_fails_on_drift_and_write_repairs(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    env = (root / ".env.example").read_text(encoding="utf-8")
    (root / ".env.example").write_text(env.replace("BFL_API_KEY=\n", ""), encoding="utf-8")
    checked = runner.invoke(app, ["providers", "docs", "--root", str(root)])
    assert checked.exit_code == 1
    assert "+BFL_API_KEY=" in checked.output and "out of date" in checked.output
    written = runner.invoke(app, ["providers", "docs", "--write", "--root", str(root)])
    assert written.exit_code == 0 and "wrote .env.example" in written.output
    assert (root / ".env.example").read_text(encoding="utf-8") == env
    assert runner.invoke(app, ["providers", "docs", "--root", str(root)]).exit_code == 0


def test_missing_markers_are_one_line(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    readme = (root / "README.md").read_text(encoding="utf-8")
    (root / "README.md").write_text(readme.replace("<!-- providers:end -->", ""), encoding="utf-8")
    done = runner.invoke(app, ["providers", "docs", "--root", str(root)])
    assert done.exit_code == 2
    assert "README.md: the markers" in done.output and "Traceback" not in done.output


def test_the_registry_is_every_named_provider_class() -> None:
    assert list(PROVIDERS) == sorted(PROVIDERS)
    for name in PROVIDERS:
        assert provider_class(name).name == name


def test_discovery_reads_sources_without_importing_them(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "one.py").write_text(
        "import module_that_does_not_exist\n"  # parsed, never imported
        "class Helper: name = 'helper'\n"
        "class Base(Provider):\n    pass\n"
        "class One(base.Provider):\n    name: ClassVar[str] = 'one'\n",
        encoding="utf-8",
    )
    (tmp_path / "two.py").write_text("class Two(Provider):\n    name = 'a-two'\n", encoding="utf-8")
    assert discover(tmp_path, "pkg") == {"a-two": "pkg.two:Two", "one": "pkg.one:One"}
    (tmp_path / "three.py").write_text("class Three(Provider):\n    name = 'one'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'one' is declared by pkg.one:One and pkg.three:Three"):
        discover(tmp_path, "pkg")
