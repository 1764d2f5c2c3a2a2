"""Per-provider global concurrency limits on a real Prefect server (the session test server)."""

from __future__ import annotations

import pytest

from domain.model import GenerationRequest
from config.secrets import Secrets
from config.settings import load_settings
from providers.registry import build_providers
from generation.limits import GloballyLimitedProvider, ensure_provider_limits, limit_providers


def test_off_by_default_the_providers_are_untouched(make_config) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(make_config())
    providers = build_providers(settings, Secrets())
    assert limit_providers(settings, providers) == providers


def test_limits_are_created_kept_held_and_released(make_config, prefect_server) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency

    settings = load_settings(
        make_config(
            chain=["automatic1111", "placeholder"],
            providers={"automatic1111": {"enabled": True}},
            scale={"global_limits": True, "provider_limits": {"placeholder": 2}},
        )
    )
    with get_client(sync_client=True) as client:
        for name in ("provider-placeholder", "provider-automatic1111"):
            try:
                client.delete_global_concurrency_limit_by_name(name)
            except Exception:  # not there
                pass
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="provider-automatic1111", limit=5))
        try:
            # an operator's limit is kept; a missing one gets provider_limits' slots
            assert ensure_provider_limits(settings, ["automatic1111", "placeholder"]) == {"automatic1111": 5, "placeholder": 2}
            wrapped = limit_providers(settings, build_providers(settings, Secrets()))
            placeholder = wrapped[1]
            assert isinstance(placeholder, GloballyLimitedProvider) and placeholder.name == "placeholder"
            request = GenerationRequest(prompt="a red ceramic mug", width=256, height=256, seed=1)
            result = placeholder.generate(request)
            assert result.provider == "placeholder" and result.width == 256
            assert client.read_global_concurrency_limit_by_name("provider-placeholder").active_slots == 0  # released

            # while both slots are held elsewhere, a call waits and then gives up
            waiting = GloballyLimitedProvider(placeholder._provider, timeout_s=1.5)
            with concurrency("provider-placeholder", occupy=2, strict=True):
                assert client.read_global_concurrency_limit_by_name("provider-placeholder").active_slots == 2
                with pytest.raises(TimeoutError):
                    waiting.generate(request)
            assert waiting.generate(request).image == result.image  # free again: same seed, same image
        finally:
            for name in ("provider-placeholder", "provider-automatic1111"):
                client.delete_global_concurrency_limit_by_name(name)
