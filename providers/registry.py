"""Provider names mapped to ``"module:Class"``, imported lazily (fsspec-style registry)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from providers.base import Provider

PROVIDERS: dict[str, str] = {
    "automatic1111": "providers.automatic1111:Automatic1111Provider",
    "placeholder": "providers.placeholder:PlaceholderProvider",
    "huggingface": "providers.huggingface:HuggingFaceProvider",
    "replicate": "providers.replicate:ReplicateProvider",
    "stability": "providers.stability:StabilityProvider",
    "flux_studio": "providers.flux_studio:FluxStudioProvider",
    "openai": "providers.openai:OpenAIProvider",
    "fal": "providers.fal:FalProvider",
    "diffusers": "providers.diffusers_local:DiffusersProvider",
    "picsum": "providers.picsum:PicsumProvider",
}


def provider_class(name: str) -> type[Provider]:
    """The Provider class registered as ``name``; ValueError names unknown ones."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r} (known: {', '.join(sorted(PROVIDERS))})") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_providers(settings, secrets) -> list[Provider]:
    """Instances of the enabled providers of ``settings.chain``, in chain order."""
    from providers.download import SafeDownloader

    downloader = SafeDownloader.from_config(settings.providers.download)
    providers = []
    for name in settings.chain:
        config = settings.provider_config(name)
        if not config.enabled:
            continue
        providers.append(provider_class(name)(config=config, secrets=secrets, downloader=downloader))
    return providers
