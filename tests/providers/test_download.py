"""The SSRF-safe downloader of provider output URLs: what it refuses and what it fetches."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from config import secrets as cfg
from domain.model import GenerationRequest
from domain.errors import InvalidOutputError, UnsafeURLError
from providers.download import SafeDownloader
from providers.replicate import ReplicateConfig, ReplicateProvider
from tests.providers.servers import ReplicateServer, photo


@pytest.fixture
def server() -> Iterator[ReplicateServer]:
    with ReplicateServer() as running:
        yield running  # type: ignore[misc]


@pytest.fixture
def other() -> Iterator[ReplicateServer]:
    with ReplicateServer() as running:
        yield running  # type: ignore[misc]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/x.png",
        "https://[::ffff:169.254.169.254]/x.png",
        "https://127.0.0.1/x.png",
        "https://localhost/x.png",
        "https://10.0.0.7/x.png",
        "https://192.168.1.20/x.png",
        "https://0.0.0.0/x.png",
        "file:///etc/passwd",
        "ftp://example.org/x.png",
        "https://user:pw@example.org/x.png",
    ],
)
def test_refused_urls(url: str, server: ReplicateServer) -> None:
    downloader = SafeDownloader(test_base_url=server.url)
    with pytest.raises(UnsafeURLError) as caught:
        downloader.fetch(url, provider="replicate", model="m")
    assert caught.value.error_class == "unsafe_url" and caught.value.provider == "replicate"
    assert "refused URL" in str(caught.value)
    assert "pw" not in str(caught.value)


def test_loopback_outside_the_test_base_is_refused(server: ReplicateServer, other: ReplicateServer) -> None:
    """127.0.0.1 is allowed only under the configured test base URL (same host, port, path)."""
    target = other.add_file(photo(128, 96))
    with pytest.raises(UnsafeURLError, match="not https"):
        SafeDownloader(test_base_url=server.url).fetch(target, provider="p")
    with pytest.raises(UnsafeURLError):
        SafeDownloader(test_base_url=f"{other.url}/only-here").fetch(target, provider="p")
    with pytest.raises(UnsafeURLError):
        SafeDownloader().fetch(target, provider="p")  # no test base at all
    assert other.requests == []  # never connected
    assert SafeDownloader(test_base_url=other.url).fetch(target, provider="p") == photo(128, 96)


def test_redirects_are_checked_at_every_hop(server: ReplicateServer) -> None:
    downloader = SafeDownloader(test_base_url=server.url)
    good = server.add_file(photo(128, 96))
    assert downloader.fetch(f"{server.url}/redirect?to={quote(good)}", provider="p") == photo(128, 96)
    for target in ("http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
        with pytest.raises(UnsafeURLError):
            downloader.fetch(f"{server.url}/redirect?to={quote(target)}", provider="p")


def test_size_and_type_caps(server: ReplicateServer) -> None:
    big = server.add_file(photo(512, 512))
    with pytest.raises(InvalidOutputError, match="byte cap"):
        SafeDownloader(test_base_url=server.url, max_bytes=4096).fetch(big, provider="p")
    with pytest.raises(InvalidOutputError, match="not an image"):
        SafeDownloader(test_base_url=server.url).fetch(f"{server.url}/html", provider="p")


@pytest.mark.parametrize("output_url", ["http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "http://127.0.0.1:9/x.png"])
def test_provider_output_url_is_refused(server: ReplicateServer, output_url: str) -> None:
    """A provider answering with a metadata / file / foreign loopback URL gets a rejection, no fetch."""
    server.output_url = output_url
    provider = ReplicateProvider(
        config=ReplicateConfig(base_url=server.url, timeout_s=5),
        secrets=cfg.Secrets(_env_file=None, provider_secrets={"REPLICATE_API_TOKEN": "r8_test_token"}),  # type: ignore[call-arg]
        downloader=SafeDownloader(test_base_url=server.url),
    )
    with pytest.raises(UnsafeURLError) as caught:
        provider.generate(GenerationRequest(prompt="a lighthouse at dusk", width=512, height=512, seed=5))
    assert caught.value.error_class == "unsafe_url" and caught.value.provider == "replicate"
    assert [r.path for r in server.requests if r.method == "POST"] == ["/v1/predictions"]  # nothing fetched
    provider.close()
