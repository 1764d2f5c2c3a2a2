"""Requests-per-window limits (``providers.<name>.rate_limit``) kept through a Prefect
global rate limit, on a real Prefect server (the session test server) and a loopback
AUTOMATIC1111 server that refuses with 429 like a rate-limited service."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from config.secrets import Secrets
from config.settings import load_settings
from domain.model import GenerationRequest
from generation.limits import GloballyLimitedProvider, bucket_of, limit_providers, rate_limit_name
from providers.registry import build_providers
from providers.spec import RateLimit
from tests.providers.servers.automatic1111 import A1111Server

CALLS = 60
THREADS = 8


class SlidingWindowA1111(A1111Server):
    """AUTOMATIC1111 behind a sliding-window limiter: a generation request that makes
    more than ``max_requests`` arrive within ``window_s`` seconds is answered 429 (with
    Retry-After); ``refused`` counts them."""

    def __init__(self, *args: Any, max_requests: int, window_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_requests = max_requests
        self.window_s = window_s
        self.arrivals: deque[float] = deque()
        self.refused = 0

    def __enter__(self) -> SlidingWindowA1111:
        super().__enter__()
        return self

    def next_mode(self) -> str:
        with self.lock:
            now = time.monotonic()
            self.arrivals.append(now)
            while self.arrivals and self.arrivals[0] <= now - self.window_s:
                self.arrivals.popleft()
            if len(self.arrivals) > self.max_requests:
                self.refused += 1
                return "429"
        return super().next_mode()


def _generate_all(provider: Any) -> list[str]:
    """``CALLS`` generations through ``provider`` from ``THREADS`` threads; each outcome's class name."""

    def one(seed: int) -> str:
        request = GenerationRequest(prompt="a red ceramic mug", width=256, height=256, seed=seed)
        try:
            return type(provider.generate(request)).__name__
        except Exception as exc:  # the provider's classified error for a 429
            return type(exc).__name__

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(CALLS)))


def _automatic1111(make_config: Any, url: str, **extra: Any) -> tuple[Any, Any]:
    settings = load_settings(
        make_config(
            chain=["automatic1111", "placeholder"],
            providers={"automatic1111": {"enabled": True, "base_url": url, "model": "sd_xl_base_1.0", **extra}},
        )
    )
    return settings, build_providers(settings, Secrets())[0]


def _delete(client: Any, name: str) -> None:
    from prefect.exceptions import ObjectNotFound

    with contextlib.suppress(ObjectNotFound):
        client.delete_global_concurrency_limit_by_name(name)


def test_the_bucket_lets_no_window_see_more_than_the_limit() -> None:
    # 1 slot, refilled every W / (N - 1) s: N calls at most in any W seconds
    assert bucket_of(RateLimit(requests=10, per_s=1)) == (1, 9.0)
    assert bucket_of(RateLimit(requests=60)) == (1, 59 / 60)
    assert bucket_of(RateLimit(requests=1, per_s=30)) == (1, 1 / 30)
    assert rate_limit_name("replicate", "black-forest-labs/flux-schnell") == "rate-replicate-black-forest-labs_flux-schnell"


def test_a_bad_rate_limit_is_one_clear_error(make_config) -> None:
    with pytest.raises(Exception, match="requests") as caught:
        load_settings(make_config(providers={"automatic1111": {"rate_limit": {"requests": 0}}}))
    assert "greater than or equal to 1" in str(caught.value)


def test_sixty_calls_stay_under_the_providers_limit_and_without_it_meet_429s(make_config, prefect_server) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with SlidingWindowA1111(max_requests=10, window_s=1.0) as server, get_client(sync_client=True) as client:
        _delete(client, "rate-automatic1111")
        # a stale limit on the server is set to the config's
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="rate-automatic1111", limit=50, slot_decay_per_second=50.0))
        try:
            settings, provider = _automatic1111(make_config, server.url, rate_limit={"requests": 10, "per_s": 1})
            (limited,) = [p for p in limit_providers(settings, [provider]) if p.name == "automatic1111"]
            assert isinstance(limited, GloballyLimitedProvider)
            stored = client.read_global_concurrency_limit_by_name("rate-automatic1111")
            assert (stored.limit, stored.slot_decay_per_second) == (1, 9.0)

            outcomes = _generate_all(limited)
            assert server.refused == 0 and outcomes == ["GenerationResult"] * CALLS
            assert len(server.requests) >= CALLS

            # the same run without the limit meets the provider's 429s
            server.reset()
            server.arrivals.clear()
            settings, provider = _automatic1111(make_config, server.url)
            assert limit_providers(settings, [provider]) == [provider]
            outcomes = _generate_all(provider)
            assert server.refused > 0 and outcomes.count("GenerationResult") == CALLS - server.refused
        finally:
            _delete(client, "rate-automatic1111")


def test_a_models_own_limit_replaces_the_providers(make_config, prefect_server) -> None:
    from prefect.client.orchestration import get_client

    model_limit = rate_limit_name("automatic1111", "sd_xl_base_1.0")
    with SlidingWindowA1111(max_requests=1000, window_s=1.0) as server, get_client(sync_client=True) as client:
        try:
            settings, provider = _automatic1111(
                make_config,
                server.url,
                rate_limit={"requests": 600, "per_s": 60},
                model_rate_limits={"sd_xl_base_1.0": {"requests": 3, "per_s": 60}},
            )
            (limited,) = limit_providers(settings, [provider])
            assert client.read_global_concurrency_limit_by_name(model_limit).slot_decay_per_second == pytest.approx(2 / 60)
            request = GenerationRequest(prompt="a red ceramic mug", width=256, height=256, seed=1)
            limited.generate(request)  # takes the model's only slot: the next waits ~30 s
            waiting = GloballyLimitedProvider(provider, timeout_s=1.0, hold=False, rate_limits={None: "rate-automatic1111", "sd_xl_base_1.0": model_limit})
            with pytest.raises(TimeoutError):
                waiting.generate(request)
            other = dataclasses.replace(request, model="realisticVision_v51")
            assert waiting.generate(other).provider == "automatic1111"  # another model: the provider's limit
        finally:
            _delete(client, model_limit)
            _delete(client, "rate-automatic1111")
