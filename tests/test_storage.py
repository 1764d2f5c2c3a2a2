"""Object stores: a local folder and a real S3 endpoint (moto's server on loopback)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from PIL import Image

from domain.errors import ObjectExistsError, StorageError
from storage.objects import S3Config
from storage.objects import ObjectStore, fit_metadata, open_store, sha256_hex
from tests.s3server import S3Server, free_port
from tests.servers import photo

KEY = "content/food/2026/11/pasta-dish-0123456789ab.png"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for moto; never real ones."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def fetch(store: ObjectStore, url: str) -> bytes:
    if url.startswith("file://"):
        return Path(urlparse(url).path).read_bytes()
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.content


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return open_store(tmp_path.as_uri())
    server: S3Server = request.getfixturevalue("s3")
    bucket = f"images-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    server.client().create_bucket(Bucket=bucket)
    return open_store(f"s3://{bucket}/studio", s3=S3Config(endpoint_url=server.url, sse="AES256", storage_class="STANDARD_IA"))


def test_upload_metadata_presigned_download_and_no_overwrite(store: ObjectStore) -> None:
    data = photo(320, 240)
    metadata = {"prompt": "overhead food photography of pesto linguine", "seed": "42", "provider": "automatic1111"}
    stored = store.put(KEY, data, content_type="image/png", metadata=metadata)
    assert stored.size == len(data)
    head = store.head(KEY)
    assert head is not None and head.content_type == "image/png" and head.checksum == stored.checksum
    assert head.metadata == metadata
    assert store.get(KEY) == data
    downloaded = fetch(store, store.presigned_url(KEY, 300))
    assert downloaded == data
    with Image.open(io.BytesIO(downloaded)) as image:
        assert image.size == (320, 240)
    assert store.put(KEY, data, content_type="image/png", metadata=metadata).checksum == stored.checksum  # same: no-op
    with pytest.raises(ObjectExistsError, match="already holds a different object"):
        store.put(KEY, photo(320, 240, "chelsea"), content_type="image/png")
    assert store.get(KEY) == data  # never overwritten
    assert store.head("content/food/2026/11/missing.png") is None
    with pytest.raises(StorageError, match="unsafe object key"):
        store.put("../escape.png", data, content_type="image/png")


def test_s3_options_reach_the_store(s3: S3Server, tmp_path: Path) -> None:
    client = s3.client()
    client.create_bucket(Bucket="options")
    store = open_store("s3://options/pfx", s3=S3Config(endpoint_url=s3.url, sse="AES256", storage_class="STANDARD_IA"))
    store.put(KEY, b"\x89PNG fake bytes", content_type="image/png", metadata={"prompt": "x" * 5000})
    raw = client.head_object(Bucket="options", Key=f"pfx/{KEY}")
    assert raw["ServerSideEncryption"] == "AES256"
    assert raw["StorageClass"] == "STANDARD_IA"
    assert raw["ContentType"] == "image/png"
    assert len(raw["Metadata"]["sha256"]) == 64
    assert sum(len(k) + len(v) for k, v in raw["Metadata"].items()) <= 2048  # S3's metadata limit
    assert raw["Metadata"]["prompt"].endswith("...")
    assert store.client.meta.config.s3["addressing_style"] == "path"  # type: ignore[attr-defined]
    assert store.client.meta.config.request_checksum_calculation == "when_required"  # type: ignore[attr-defined]


def test_s3_down_raises_storage_error() -> None:
    store = open_store("s3://nowhere", s3=S3Config(endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1, connect_timeout_s=1))
    with pytest.raises(StorageError, match="s3://nowhere/"):
        store.put(KEY, b"bytes", content_type="image/png")


def test_unknown_scheme_and_metadata_fit() -> None:
    with pytest.raises(StorageError, match="unsupported storage URL scheme 'gs'"):
        open_store("gs://bucket")
    fitted = fit_metadata({"prompt": "p" * 3000, "seed": "1"})
    assert fitted["seed"] == "1" and sum(len(k) + len(v) for k, v in fitted.items()) <= 2048


@pytest.mark.usefixtures("prefect_server")
def test_upload_pending_retried_on_the_next_run(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The S3 endpoint is down during the first run: files wait in the spool, the image is
    marked upload-pending; the next run (another batch) uploads it once the store is back."""
    from domain.model import ImageFormat, Quality
    from flows.adhoc import generate
    from wiring.runtime import get_runtime
    from tests.rows import flow_summary

    port = free_port()
    make_config(
        storage_url="s3://content",
        s3={"endpoint_url": f"http://127.0.0.1:{port}", "max_attempts": 1, "connect_timeout_s": 1},
        renditions=[{"name": "thumb", "width": 64, "height": 64, "fit": "cover", "format": "webp"}],
    )
    first = flow_summary(generate(template="sneaker", count=1, quality=Quality.standard, format=ImageFormat.square, batch="down", return_state=True))
    db = get_runtime().db
    [row] = db.images(key_prefix="adhoc:")
    assert first.images[0].status == "processed"
    # no other run exists: the verdict names the store, not a run holding the image
    assert first.verdict().startswith(
        "1 of 1 images not done as real content: 1 waiting to upload (the store failed; see the errors); the store failed: cannot "
    )  # the store's own cause, one line
    assert "Could not connect" in first.verdict() and "\n" not in first.verdict()
    assert row.status == "processed" and row.upload_pending and "Could not connect" in (row.error or "")
    assert row.spool_path and Path(row.spool_path).is_file()

    with S3Server(port) as server:
        server.client().create_bucket(Bucket="content")
        second = flow_summary(generate(template="sneaker", count=1, quality=Quality.standard, format=ImageFormat.square, batch="up", return_state=True))
        keys = sorted(o["Key"] for o in server.client().list_objects_v2(Bucket="content").get("Contents", []))
    rows = {r.idempotency_key.split(":")[2]: r for r in db.images(key_prefix="adhoc:")}
    assert second.images[0].status == "placeholder"  # offline: a placeholder, stored aside
    pending = rows["down-sneaker"]
    assert pending.status == "placeholder" and not pending.upload_pending
    assert pending.run_key is None and pending.lease_expires_at is None
    assert not Path(pending.spool_path or "").exists()  # spool freed only once stored
    assert len(keys) == 6  # two originals, two thumbnails, two provenance sidecars, each once
    assert f"{pending.sidecar_key}" in keys
    assert f"{pending.storage_key}" in keys and pending.storage_key.startswith("placeholder/products/")


def test_s3_credentials_come_from_the_secrets(s3: S3Server, make_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """AWS_* secrets (environment or .env) reach boto3; a YAML file holding one is refused."""
    from domain.errors import ConfigError
    from config.settings import load_settings
    from wiring.runtime import get_runtime

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-secrets")
    s3.client().create_bucket(Bucket="creds")
    make_config(storage_url="s3://creds", s3={"endpoint_url": s3.url})
    store = get_runtime().store
    store.put(KEY, b"bytes", content_type="image/png")
    assert store.client._request_signer._credentials.access_key == "from-secrets"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="'s3.aws_secret_access_key' is a secret"):
        load_settings(make_config(s3={"aws_secret_access_key": "oops"}))


@pytest.mark.usefixtures("prefect_server")
def test_share_prints_presigned_links_that_download(s3: S3Server, make_config) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from cli.main import app
    from domain.model import ImageFormat, Quality
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    s3.client().create_bucket(Bucket="shared")
    make_config(
        storage_url="s3://shared/studio",
        s3={"endpoint_url": s3.url},
        renditions=[{"name": "thumb", "width": 64, "height": 64, "fit": "cover", "format": "webp"}],
    )
    from tests.rows import flow_summary

    [image] = flow_summary(generate(template="sneaker", count=1, quality=Quality.standard, format=ImageFormat.square, batch="s", return_state=True)).images
    assert image.status == "placeholder" and image.storage_key  # offline: a placeholder, stored aside
    result = CliRunner().invoke(app, ["share", image.image_id, "--expires", "120"])
    assert result.exit_code == 0, result.output
    links = [line.split()[-1] for line in result.output.splitlines() if "X-Amz-Signature" in line]
    assert len(links) == 2 and all("X-Amz-Expires=120" in link for link in links)
    stored = {r.name: r for r in get_runtime().db.renditions(get_runtime().db.images()[0].id)}
    for link in links:
        body = httpx.get(link, timeout=10).content
        assert sha256_hex(body) in {r.checksum for r in stored.values()}
    missing = CliRunner().invoke(app, ["share", "nope"])
    assert missing.exit_code == 1 and "no image with id 'nope'" in missing.output


def test_s3_racing_writer_cannot_overwrite(s3: S3Server) -> None:
    """Another writer stores the key between our head and our put: If-None-Match: * makes the
    store answer 412, and the store refuses instead of overwriting."""
    from storage.objects import S3Store

    s3.client().create_bucket(Bucket="race")

    class BlindStore(S3Store):  # sees nothing at first, as if the rival wrote just after our check
        blind = True

        def head(self, key: str):  # type: ignore[no-untyped-def]
            if self.blind:
                self.blind = False
                return None
            return super().head(key)

    rival = open_store("s3://race", s3=S3Config(endpoint_url=s3.url))
    rival.put(KEY, b"the rival's image", content_type="image/png")
    store = BlindStore("race", options=S3Config(endpoint_url=s3.url))
    with pytest.raises(ObjectExistsError, match="just stored by another writer"):
        store.put(KEY, b"our different image", content_type="image/png")
    assert rival.get(KEY) == b"the rival's image"
    same = BlindStore("race", options=S3Config(endpoint_url=s3.url))
    assert same.put(KEY, b"the rival's image", content_type="image/png").size == len(b"the rival's image")


def test_a_local_write_removes_the_part_files_a_killed_write_of_its_key_left(tmp_path: Path) -> None:
    from storage.objects import LocalStore

    store = LocalStore(tmp_path)
    folder = tmp_path / "content" / "a"
    folder.mkdir(parents=True)
    stale = [folder / ".x.png.123-456.part", folder / ".x.png.meta.json.9-9.part"]
    kept = [folder / ".y.png.1-1.part", folder / "x.png.notes"]  # another key's part, not a part file
    for path in stale + kept:
        path.write_bytes(b"half")
    store.put("content/a/x.png", b"whole", content_type="image/png")
    assert (folder / "x.png").read_bytes() == b"whole" and not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
