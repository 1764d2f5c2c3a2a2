"""Prompt privacy: ``embed_prompt: false`` (template or category) keeps the prompt out of
every published byte (renditions, the cleaned original, their C2PA manifests and object
metadata, the JSON sidecar) while the database keeps it; prompts encrypted at rest
with a Fernet key from the environment, read back by ``history`` with the key."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from cli.main import app
from tests.c2pa_certs import make_chain
from tests.conftest import a1111_config
from tests.servers import A1111Server
from tests.rows import flow_summary

pytestmark = pytest.mark.usefixtures("prefect_server")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRET = "zanzibar quokka lantern"


def _library(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    (folder / "products" / "secret-lamp.yaml").write_text(
        f'name: secret-lamp\nprompt: "{SECRET} on a {{walnut|birch}} desk, studio photo"\nembed_prompt: false\nstyles: ["soft light"]\n'
    )
    return folder


def test_private_prompts_are_in_no_published_byte(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime
    from generation.upload import object_metadata

    chain = make_chain(tmp_path / "c2pa")
    renditions = [{"name": f"r-{fmt}", "width": 256, "height": 256, "format": fmt} for fmt in ("jpeg", "webp", "png", "avif")]
    with A1111Server() as server:
        make_config(
            **a1111_config(server.url),
            templates_dir=str(_library(tmp_path)),
            renditions=renditions,
            dedup={"enabled": False},
            privacy={"categories": {"food": False}},
            c2pa={"enabled": True, "certificate": str(chain.certificate), "private_key": str(chain.private_key)},
        )
        generate(template="secret-lamp", count=2, batch="private")  # embed_prompt: false in the template
        generate(template="pasta-dish", count=1, batch="food")  # food: false in the configuration
        generate(template="sneaker", count=1, batch="public")  # published with its prompt
    db = get_runtime().db
    rows = {r.template: r for r in db.images()}
    assert {r.status for r in db.images()} == {"done"}
    output = tmp_path / "output"
    for row in db.images():
        private = row.template != "sneaker"
        assert row.prompt_private is private and row.prompt and row.negative_prompt
        texts = [row.prompt, row.prompt.split(",")[0], row.negative_prompt]
        if row.template == "secret-lamp":
            texts.append(SECRET)
        stored = db.renditions(row.id)
        assert len(stored) == 5
        for rendition in stored:
            data = (output / rendition.storage_key).read_bytes()
            for text in texts:
                found = text.encode("utf-8") in data or text.encode("utf-16-le") in data
                if private:
                    assert not found, (rendition.name, text)
        metadata = " ".join(object_metadata(row).values())
        assert (row.prompt in metadata) is (not private)
        sidecar = (output / str(row.sidecar_key)).read_text()
        assert (row.prompt in sidecar) is (not private)  # the sidecar is published with the files
    public = db.renditions(rows["sneaker"].id)
    assert all(rows["sneaker"].prompt.encode() in (output / r.storage_key).read_bytes() for r in public)


def test_prompts_encrypted_at_rest(make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime, reset_runtime

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PROMPT_ENCRYPTION_KEY", key)
    with A1111Server() as server:
        make_config(**a1111_config(server.url), templates_dir=str(_library(tmp_path)), dedup={"enabled": False})
        summary = flow_summary(generate(template="secret-lamp", count=1, batch="enc", return_state=True))
    assert [i.status for i in summary.images] == ["done"]
    row = get_runtime().db.images()[0]
    assert SECRET in (row.prompt or "")  # read back in clear with the key
    database = tmp_path / "output" / "content-pipeline.db"
    with sqlite3.connect(database) as connection:
        stored, negative = connection.execute("SELECT prompt, negative_prompt FROM images").fetchone()
    assert stored.startswith("fernet:") and negative.startswith("fernet:")
    assert SECRET not in stored and b"zanzibar" not in database.read_bytes()
    assert Fernet(key.encode()).decrypt(stored[len("fernet:") :].encode()).decode() == row.prompt
    runner = CliRunner()
    shown = runner.invoke(app, ["history"])
    assert shown.exit_code == 0 and f"prompt: {row.prompt}" in shown.output
    monkeypatch.delenv("PROMPT_ENCRYPTION_KEY")
    reset_runtime()
    hidden = runner.invoke(app, ["history"])
    assert hidden.exit_code == 0 and SECRET not in hidden.output
    assert "prompt: (encrypted at rest: set PROMPT_ENCRYPTION_KEY to read it)" in hidden.output
    # a row planned with the key is never sent to a provider as ciphertext without it
    from domain.errors import ConfigError
    from generation.generate import generate_image

    pk = row.id
    with get_runtime().db.session() as session:
        from storage.db import ImageRecord

        fresh = ImageRecord(
            idempotency_key="manual:1", image_id="manual1", flow="adhoc", run_date=row.run_date, slot="s", slot_index=0, category="products", prompt=stored
        )
        session.add(fresh)
        session.commit()
        session.refresh(fresh)
        assert pk != fresh.id
    with pytest.raises(ConfigError, match="encrypted at rest; set PROMPT_ENCRYPTION_KEY"):
        generate_image(get_runtime().db, None, fresh.id, spool_dir=tmp_path, policy=get_runtime().settings.policy)  # type: ignore[arg-type]
    monkeypatch.setenv("PROMPT_ENCRYPTION_KEY", "not-a-key")
    reset_runtime()
    from storage.crypto import cipher

    with pytest.raises(ConfigError, match="PROMPT_ENCRYPTION_KEY: not a Fernet key"):
        cipher()
