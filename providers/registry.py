"""Provider names mapped to ``"module:Class"`` (fsspec's ``known_implementations`` layout,
fsspec/registry.py), and the ``providers:`` section of the configuration built from them.

Adding a provider is one module (``providers/<name>.py``, its class declaring ``Config``,
``secret_env``, ``price_table`` and ``model_specs``) and one line in ``PROVIDERS``: the
``providers.<name>`` YAML section is validated by its ``Config``, its secrets are read from
the environment names it declares, and nothing else lists providers. This module imports
nothing from config.settings (config.settings imports it).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from providers.base import Provider
from providers.civitai import TOKEN_ENV as CIVITAI_TOKEN_ENV
from providers.civitai import CivitaiConfig
from providers.download import DownloadConfig
from providers.spec import ProviderConfig

from providers.lifecycle import doctor_findings

if TYPE_CHECKING:  # pragma: no cover
    from providers.base import SecretSource

PROVIDERS: dict[str, str] = {
    "automatic1111": "providers.automatic1111:Automatic1111Provider",
    "placeholder": "providers.placeholder:PlaceholderProvider",
    "huggingface": "providers.huggingface:HuggingFaceProvider",
    "replicate": "providers.replicate:ReplicateProvider",
    "stability": "providers.stability:StabilityProvider",
    "flux_studio": "providers.flux_studio:FluxStudioProvider",
    "openai": "providers.openai:OpenAIProvider",
    "gemini": "providers.gemini:GeminiProvider",
    "fal": "providers.fal:FalProvider",
    "bfl": "providers.bfl:BFLProvider",
    "diffusers": "providers.diffusers_local:DiffusersProvider",
    "picsum": "providers.picsum:PicsumProvider",
}

#: Sections of ``providers:`` that are not providers.
SECTIONS = ("download", "civitai")


def provider_class(name: str) -> type[Provider]:
    """The Provider class registered as ``name``; ValueError names unknown ones."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r} (known: {', '.join(sorted(PROVIDERS))})") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def secret_env_names() -> dict[str, tuple[str, ...]]:
    """``{"<provider>.<secret>": (ENV_NAME, ...)}`` for every registered provider, plus the
    Civitai token: the environment variables that hold provider secrets."""
    names = {f"{name}.{secret}": env for name in PROVIDERS for secret, env in provider_class(name).secret_env.items()}
    names["civitai.token"] = CIVITAI_TOKEN_ENV
    return names


class ProvidersConfigBase(BaseModel):
    """The ``providers:`` section: one entry per registered provider (its own ``Config``)
    plus ``download`` (output-URL fetching) and ``civitai`` (model pulls).

    ``get(name)`` returns a provider's validated config."""

    model_config = ConfigDict(extra="forbid")
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    civitai: CivitaiConfig = Field(default_factory=CivitaiConfig)

    def get(self, name: str) -> ProviderConfig:
        """The config of provider ``name`` (ValueError for an unknown one)."""
        config = getattr(self, name, None)
        if isinstance(config, ProviderConfig):
            return config
        return provider_class(name).Config()

    if TYPE_CHECKING:  # every provider is a field of the model built below

        def __getattr__(self, name: str) -> Any: ...


@lru_cache(maxsize=1)
def _providers_model() -> type[ProvidersConfigBase]:
    fields: dict[str, Any] = {}
    for name in PROVIDERS:
        config_cls = provider_class(name).Config
        fields[name] = (config_cls, Field(default_factory=config_cls))
    model: type[ProvidersConfigBase] = create_model("ProvidersConfig", __base__=ProvidersConfigBase, **fields)
    return model


if TYPE_CHECKING:
    ProvidersConfig = ProvidersConfigBase
else:
    ProvidersConfig = _providers_model()


def build_providers(settings: Any, secrets: SecretSource) -> list[Provider]:
    """Instances of the enabled providers of ``settings.chain``, in chain order."""
    from providers.download import SafeDownloader

    downloader = SafeDownloader.from_config(settings.providers.download)
    providers = []
    for name in settings.chain:
        config = settings.providers.get(name)
        if not config.enabled:
            continue
        providers.append(provider_class(name)(config=config, secrets=secrets, downloader=downloader))
    return providers


def model_findings(name: str, config: Any, secrets: Any, today: date | None = None) -> list[tuple[str, str]]:
    """``doctor_findings`` for the registered provider ``name`` built from ``config`` and
    ``secrets`` (its client closed afterwards); ``[]`` for a placeholder provider and for
    one that neither declares ``model_lifecycle`` nor asks its API (``model_status``)."""
    cls = provider_class(name)
    if cls.is_placeholder or (not cls.model_lifecycle and cls.model_status is Provider.model_status):
        return []  # nothing declared, nothing to ask
    provider = cls(config=config, secrets=secrets)
    try:
        return doctor_findings(provider, today)
    finally:
        provider.close()
