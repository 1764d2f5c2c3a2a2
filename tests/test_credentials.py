"""C2PA Content Credentials (imaging.credentials, c2pa-python): every rendition format we
write is signed and validates with c2pa-python's Reader; renditions carry the signed
original as ingredient; a tampered file fails; ``content-pipeline verify`` reports it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from config.imaging import C2paConfig, RenditionConfig
from imaging.credentials import CredentialsError, sign_files, verify_file
from imaging.postprocess import make_renditions
from imaging.provenance import DIGITAL_SOURCE_TYPE, Provenance
from tests.c2pa_certs import make_chain
from tests.conftest import a1111_config
from tests.servers import A1111Server, photo

FORMATS = ["jpeg", "webp", "png", "avif"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_chain(tmp_path_factory.mktemp("c2pa"))


def _config(chain) -> C2paConfig:  # type: ignore[no-untyped-def]
    return C2paConfig(enabled=True, certificate=chain.certificate, private_key=chain.private_key)


def _signed_set(tmp_path: Path, chain, provenance: Provenance):  # type: ignore[no-untyped-def]
    original = tmp_path / "spool.png"
    original.write_bytes(photo(256, 192))
    specs = [RenditionConfig(name=f"r-{fmt}", width=128, height=128, format=fmt) for fmt in FORMATS]
    files = make_renditions(original, specs, tmp_path / "out", provenance=provenance)
    return sign_files(files, provenance, _config(chain))


def test_every_format_is_signed_and_validates(tmp_path: Path, chain) -> None:  # type: ignore[no-untyped-def]
    provenance = Provenance(image_id="abc123", prompt="a ceramic mug on a table", seed=7, provider="automatic1111", model="sdxl", template="ceramic-mug")
    files = _signed_set(tmp_path, chain, provenance)
    assert [f.format for f in files] == ["png", *FORMATS]
    for item in files:
        data = item.path.read_bytes()
        assert len(data) == item.bytes
        Image.open(io.BytesIO(data)).load()  # still a valid image
        report = verify_file(item.path, trust_anchors=chain.root)
        assert report.state == "Trusted" and report.valid, (item.name, report.state, report.failures)
        assert DIGITAL_SOURCE_TYPE in report.digital_source_types(), item.name
        assert report.generation()["prompt"] == "a ceramic mug on a table"
        assert report.generation()["provider"] == "automatic1111"
        actions = [a["action"] for a in report.actions()]
        if item.name == "original":
            assert actions == ["c2pa.created"]
            assert report.actions()[0]["softwareAgent"]["name"] == "automatic1111/sdxl"
        else:  # its own manifest, the signed original as ingredient
            assert actions[0] == "c2pa.opened" and "c2pa.resized" in actions
            ingredients = report.active["ingredients"]
            assert [i["relationship"] for i in ingredients] == ["parentOf"]
            assert ingredients[0]["title"] == "original.png"
        # without trust anchors the signature is still valid (the chain is just not trusted)
        assert verify_file(item.path).state == "Valid"


def test_a_tampered_file_fails_validation(tmp_path: Path, chain) -> None:  # type: ignore[no-untyped-def]
    files = _signed_set(tmp_path, chain, Provenance(image_id="t1", prompt="a lighthouse"))
    for item in files:
        data = bytearray(item.path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one bit of pixel data
        tampered = item.path.with_name("tampered-" + item.path.name)
        tampered.write_bytes(bytes(data))
        report = verify_file(tampered, trust_anchors=chain.root)
        assert not report.valid and report.state == "Invalid", (item.name, report.state)


def test_private_prompt_is_not_in_the_manifest(tmp_path: Path, chain) -> None:  # type: ignore[no-untyped-def]
    secret = "zanzibar-secret-prompt"
    files = _signed_set(tmp_path, chain, Provenance(image_id="p1", prompt=f"{secret} mug", prompt_private=True).published())
    for item in files:
        assert secret.encode() not in item.path.read_bytes()
        report = verify_file(item.path)
        assert report.valid and "prompt" not in report.generation()


def test_verify_command(tmp_path: Path, chain, make_config) -> None:  # type: ignore[no-untyped-def]
    files = _signed_set(tmp_path, chain, Provenance(image_id="v1", prompt="a red [bold]sneaker[/bold]", provider="automatic1111", model="sdxl"))
    make_config(c2pa={"trust_anchors": str(chain.root)})
    runner = CliRunner()
    web = next(f for f in files if f.format == "jpeg")
    result = runner.invoke(app, ["verify", str(web.path)])
    assert result.exit_code == 0, result.output
    assert "Trusted" in result.output and "trainedAlgorithmicMedia" in result.output
    assert "ingredient: original.png (parentOf)" in result.output
    # the prompt comes from the original's manifest inside; brackets are printed as they are
    assert "prompt:     a red [bold]sneaker[/bold]" in result.output
    original = next(f for f in files if f.name == "original")
    result = runner.invoke(app, ["verify", str(original.path)])
    assert result.exit_code == 0 and "actions:    c2pa.created" in result.output
    # a file without credentials, and a damaged one: exit 1, one line
    plain = tmp_path / "plain.png"
    plain.write_bytes(photo(64, 64))
    result = runner.invoke(app, ["verify", str(plain)])
    assert result.exit_code == 1 and "no C2PA Content Credentials" in result.output
    data = bytearray(web.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    web.path.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", str(web.path)])
    assert result.exit_code == 1 and "Invalid" in result.output
    with pytest.raises(CredentialsError, match="cannot read"):
        verify_file(tmp_path / "missing.jpg")


def test_pipeline_publishes_signed_files(prefect_server, make_config, tmp_path: Path, chain) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    with A1111Server() as server:
        make_config(
            **a1111_config(server.url),
            c2pa={"enabled": True, "certificate": str(chain.certificate), "private_key": str(chain.private_key)},
            renditions=[{"name": f"r-{fmt}", "width": 256, "height": 256, "format": fmt} for fmt in FORMATS],
            dedup={"enabled": False},
        )
        summary = generate(template="ceramic-mug", count=1, batch="c2pa")
    assert [i.status for i in summary.images] == ["done"]
    db = get_runtime().db
    row = db.images()[0]
    stored = db.renditions(row.id)
    assert sorted(r.format for r in stored) == sorted(["png", *FORMATS])
    for rendition in stored:
        path = tmp_path / "output" / rendition.storage_key
        assert path.stat().st_size == rendition.bytes
        report = verify_file(path, trust_anchors=chain.root)
        assert report.state == "Trusted", (rendition.name, report.failures)
        assert report.generation()["prompt"] == row.prompt
