"""No adapter follows a redirect from its base URL to a private, loopback or link-local
address (providers/netguard.py), SDK clients included: every HTTP provider of the registry
(its contract case, tests/providers/servers/<name>.py) is aimed at a server that answers
every request with a 307 to a canary; the canary must never be reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from config import secrets as cfg
from domain.model import GenerationRequest
from domain.errors import ProviderError
from providers.chain import failed_cost
from providers.download import SafeDownloader
from providers.netguard import AddressGuard
from providers.registry import PROVIDERS, provider_class
from tests.providers import servers as srv
from tests.providers.servers.common import ProtocolServer, Reply, Request

CASES = srv.cases()
REQUEST = GenerationRequest(prompt="a red kite over a beach", width=512, height=512, seed=5)
#: internal spellings of the canary's address: loopback, IPv6 loopback, decimal IPv4, a local name
TARGETS = ("http://127.0.0.1:{port}/canary", "http://[::1]:{port}/canary", "http://2130706433:{port}/canary", "http://localhost:{port}/canary")


class Canary(ProtocolServer):
    """Counts every request that reaches it (none may)."""

    def handle(self, request: Request) -> Reply | None:
        return Reply.json(200, {"id": "canary", "status": "succeeded"})


class Redirector(ProtocolServer):
    """Answers every request with ``307 Temporary Redirect`` to ``target`` (RFC 9110 15.4.8:
    the client repeats the same method and body there)."""

    target = ""

    def handle(self, request: Request) -> Reply | None:
        return Reply(307, b"", "text/plain", {"Location": self.target})


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    with Canary() as running:
        yield running  # type: ignore[misc]


@pytest.fixture(scope="module")
def redirector() -> Iterator[Redirector]:
    with Redirector() as running:
        yield running  # type: ignore[misc]


def provider_at(name: str, url: str, **settings: Any) -> Any:
    case = CASES[name]
    cls = provider_class(name)
    config = cls.Config(**{"timeout_s": 5.0, **case.settings(url), **settings})
    secrets = cfg.Secrets(_env_file=None, provider_secrets=case.secrets)  # type: ignore[arg-type]
    return cls(config=config, secrets=secrets, downloader=SafeDownloader(test_base_url=url, timeout_s=5.0))


def test_every_http_provider_of_the_registry_is_covered() -> None:
    assert set(CASES) == {n for n in PROVIDERS if n not in ("placeholder", "diffusers")}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(CASES))
def test_redirect_to_an_internal_address_is_refused(name: str, target: str, canary: Canary, redirector: Redirector) -> None:
    redirector.target = target.format(port=canary.httpd.server_address[1])
    canary.reset()
    redirector.reset()
    provider = provider_at(name, redirector.url)
    try:
        with pytest.raises(ProviderError) as caught:
            provider.generate(REQUEST)
    finally:
        provider.close()
    assert canary.requests == [], f"{name} followed the redirect to {redirector.target}"
    assert redirector.requests, f"{name} never called its base URL"
    assert caught.value.error_class == "unsafe_url", f"{name}: {caught.value!r}"
    assert failed_cost(provider, REQUEST, caught.value) == 0.0  # refused before it was sent: not billed


def test_allow_private_addresses_lets_a_client_follow(canary: Canary, redirector: Redirector) -> None:
    """The opt-in works, which shows the canary would count a followed redirect."""
    redirector.target = f"http://127.0.0.1:{canary.httpd.server_address[1]}/canary"
    canary.reset()
    provider = provider_at("openai", redirector.url, allow_private_addresses=True)
    try:
        with pytest.raises(ProviderError):
            provider.generate(REQUEST)
    finally:
        provider.close()
    assert len(canary.requests) == 1


def test_the_guard_resolves_names_and_numeric_spellings() -> None:
    guard = AddressGuard(["https://api.example.com/v1"], provider="x")
    guard.check("https://api.example.com/v1/images")  # the configured origin
    for url in (
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://2130706433/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
    ):
        with pytest.raises(ProviderError, match="internal address"):
            guard.check(url)
