"""AI-content marking on by default (issue 20, point 5): with no ``c2pa`` settings, every
published file carries the IPTC digital source type ``trainedAlgorithmicMedia`` in XMP
and a C2PA manifest signed by the per-installation self-signed chain
(imaging.signing_chain), which c2pa-python's Reader validates as ``Valid`` with the
single failure ``signingCredential.untrusted``; ``verify`` says the signer is untrusted
and how to configure a trusted one. Every file also carries the invisible watermark
(imaging.watermark) in its pixels, under the signature: the published original still reads
it after its metadata is stripped, a JPEG re-encode at quality 75 and a half-size resize,
and ``verify`` reads it from that laundered copy."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import c2pa
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from imaging.provenance import DIGITAL_SOURCE_TYPE, read_provenance
from imaging.watermark import content_id, read
from tests.conftest import a1111_config
from tests.servers import A1111Server

pytestmark = pytest.mark.usefixtures("prefect_server")
MIME = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".avif": "image/avif"}


def _read(path: Path) -> tuple[str, list[str], dict[str, Any]]:
    with c2pa.Reader(MIME[path.suffix], io.BytesIO(path.read_bytes())) as reader:
        store = json.loads(reader.json())
        results = reader.get_validation_results() or {}
        return (reader.get_validation_state() or "", [str(f.get("code")) for f in results.get("activeManifest", {}).get("failure", [])], store)


def test_default_configuration_publishes_signed_marked_files(make_config: Any, tmp_path: Path) -> None:
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    renditions = [{"name": f"r-{fmt}", "width": 128, "height": 128, "format": fmt} for fmt in ("jpeg", "webp", "png", "avif")]
    with A1111Server() as server:
        make_config(**a1111_config(server.url), renditions=renditions, dedup={"enabled": False})
        assert get_runtime().settings.c2pa.enabled and get_runtime().settings.c2pa.certificate is None
        generate(template="sneaker", count=1, batch="marked")
    rt = get_runtime()
    [row] = rt.db.images()
    assert row.status == "done" and row.id is not None
    output = tmp_path / "output"
    files = [output / r.storage_key for r in rt.db.renditions(row.id)]
    assert sorted(p.suffix for p in files) == [".avif", ".jpg", ".png", ".png", ".webp"]
    for path in files:
        assert read_provenance(path).get("digital_source_type") == DIGITAL_SOURCE_TYPE, path
        state, failures, store = _read(path)
        assert (state, failures) == ("Valid", ["signingCredential.untrusted"]), (path, state, failures)
        active = store["manifests"][store["active_manifest"]]
        assert "content-pipeline installation signer" in json.dumps(active["signature_info"])
        with Image.open(path) as published:  # the signed pixels carry the watermark
            assert read(published).content_id == f"{content_id(row.image_id):08x}", path
    # the 1024 px original, laundered as a platform would: metadata stripped (pixels re-saved
    # bare), JPEG quality 75, half size; C2PA and XMP are gone, the watermark is not
    [original] = [p for p in files if p.name.endswith(".png") and Image.open(p).size == (1024, 1024)]
    with Image.open(original) as published:
        pixels = published.convert("RGB")
    stripped = tmp_path / "stripped.png"
    pixels.save(stripped)
    jpeg = tmp_path / "shared.jpg"
    Image.open(stripped).save(jpeg, "JPEG", quality=75)
    laundered = tmp_path / "laundered.png"  # the half-size copy kept losslessly: the chain is exactly those three steps
    with Image.open(jpeg) as shared:
        shared.resize((512, 512), Image.Resampling.LANCZOS).save(laundered)
    assert read_provenance(laundered).get("digital_source_type") is None
    shown = CliRunner().invoke(app, ["verify", str(laundered)])
    assert shown.exit_code == 0, shown.output
    assert "no C2PA Content Credentials" in shown.output
    assert f"watermark:  present: content-pipeline AI-generated image, content id {content_id(row.image_id):08x}" in shown.output
    # the installation's chain: outside the published folders, the key readable by its owner only
    chain = output / "credentials" / "c2pa"
    assert (chain / "signer-chain.pem").read_text().count("BEGIN CERTIFICATE") == 2
    assert stat.S_IMODE((chain / "signer.key").stat().st_mode) == 0o600
    assert not any("credentials" in str(key) for key in rt.store.keys("content/"))
    shown = CliRunner().invoke(app, ["verify", str(files[0])])
    assert shown.exit_code == 0, shown.output
    assert "Valid" in shown.output and "the signer is untrusted" in shown.output
    assert "c2pa.trust_anchors" in shown.output and "c2pa.certificate" in shown.output
    # a second image reuses the same chain
    before = (chain / "signer.key").read_bytes()
    with A1111Server() as server:
        make_config(**a1111_config(server.url), dedup={"enabled": False})
        generate(template="sneaker", count=1, batch="again")
    assert (chain / "signer.key").read_bytes() == before
