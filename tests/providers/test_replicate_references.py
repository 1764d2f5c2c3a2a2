"""Replicate reference images: flux-dev answers in the reference's aspect ratio, so a
non-square reference for a square request is cropped first (an image accepted and paid
once); references over 1 MB go through the files API (server:
tests/providers/servers/replicate.py, flux-dev and POST /v1/files)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator

import pytest
from PIL import Image

from config import secrets as cfg
from domain.model import Attempt, GenerationRequest
from providers.chain import RetryConfig
from providers.chain import ProviderChain
from providers.download import SafeDownloader
from providers.placeholder import PlaceholderConfig, PlaceholderProvider
from providers.replicate import DATA_URI_MAX_BYTES, ReplicateConfig, ReplicateProvider
from tests.providers.servers.common import photo
from tests.providers.servers.replicate import TOKEN, ReplicateServer, is_prediction

FLUX_DEV = "black-forest-labs/flux-dev"


def secrets() -> cfg.Secrets:
    return cfg.Secrets(_env_file=None, provider_secrets={"REPLICATE_API_TOKEN": TOKEN})  # type: ignore[dict-item]


@pytest.fixture
def server() -> Iterator[ReplicateServer]:
    with ReplicateServer() as running:
        yield running  # type: ignore[misc]


def provider_for(server: ReplicateServer) -> ReplicateProvider:
    ReplicateProvider._schemas.clear()
    config = ReplicateConfig(base_url=server.url, model=FLUX_DEV, poll_interval_s=0.02, timeout_s=20)
    return ReplicateProvider(config=config, secrets=secrets(), downloader=SafeDownloader(test_base_url=server.url))


def noise_png(width: int, height: int) -> bytes:
    """An incompressible PNG (random pixels): about 3 bytes per pixel."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def test_non_square_reference_through_flux_dev_is_cropped_accepted_and_paid_once(server: ReplicateServer) -> None:
    reference = photo(768, 512)  # 3:2
    req = GenerationRequest(prompt="a teapot", width=1024, height=1024, seed=3, init_image=reference, strength=0.7)
    provider = provider_for(server)
    attempts: list[Attempt] = []
    chain = ProviderChain(
        [provider, PlaceholderProvider(config=PlaceholderConfig(), secrets=secrets())], retry=RetryConfig(max_retries=2, backoff_s=0.0), sleep=lambda s: None
    )
    result = chain.generate(req, attempts.append)
    assert result.provider == "replicate" and (result.width, result.height) == (1024, 1024)
    assert [a.status for a in attempts] == ["success"] and attempts[0].cost_usd == 0.025
    assert len([r for r in server.requests if is_prediction(r)]) == 1
    sent = server.input_file(next(r for r in server.requests if is_prediction(r)).json()["input"]["image"])
    assert sent is not None
    with Image.open(io.BytesIO(sent)) as image:
        assert image.size == (512, 512)  # centre-cropped to the requested 1:1
    assert any("reference cropped from 768x512 to 512x512" in n for n in result.metadata["mapping_notes"])


def test_without_the_crop_the_server_answers_in_the_references_ratio(server: ReplicateServer) -> None:
    """The server follows cog-flux: what the crop prevents is real."""
    width, height = server._output_size(FLUX_DEV, {"image": "data:image/png;base64," + base64.b64encode(photo(768, 512)).decode()})
    assert abs(width / height - 1.5) < 0.05


def test_a_5_mb_reference_goes_through_the_files_api(server: ReplicateServer) -> None:
    reference = noise_png(1300, 1300)
    assert len(reference) > 5 * DATA_URI_MAX_BYTES
    req = GenerationRequest(prompt="a teapot", width=1024, height=1024, seed=3, init_image=reference)
    result = provider_for(server).generate(req)
    uploads = [r for r in server.requests if r.path == "/v1/files" and r.method == "POST"]
    assert len(uploads) == 1 and list(server.uploads.values())[0][0] == reference
    image_input = next(r for r in server.requests if is_prediction(r)).json()["input"]["image"]
    assert image_input.startswith(f"{server.url}/v1/files/") and result.cost_usd == 0.025


def test_a_small_reference_stays_a_data_uri(server: ReplicateServer) -> None:
    req = GenerationRequest(prompt="a teapot", width=1024, height=1024, seed=3, init_image=photo(256, 256))
    provider_for(server).generate(req)
    assert not [r for r in server.requests if r.path == "/v1/files"]
    assert next(r for r in server.requests if is_prediction(r)).json()["input"]["image"].startswith("data:image/png")
