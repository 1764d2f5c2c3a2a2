"""Provider names mapped to ``"module:Class"`` (fsspec's ``known_implementations`` layout,
fsspec/registry.py), and the ``providers:`` section of the configuration built from them.

Adding a provider is one module (``providers/<name>.py``, its ``Provider`` subclass declaring
``name``, ``Config``, ``secret_env``, ``price_table`` and ``model_specs``): ``PROVIDERS`` is
built by discovery (every module of this package whose source defines ``class X(Provider)``
with ``name = "..."``, read with ``ast`` so no SDK is imported until a provider is used), the
``providers.<name>`` YAML section is validated by its ``Config``, its secrets are read from
the environment names it declares, and the README table, the ``providers:`` examples of
content-pipeline.yaml and .env.example are generated from it (``content-pipeline providers
docs --write``): nothing else lists providers. This module imports
nothing from config.settings (config.settings imports it).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from functools import lru_cache
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from providers.base import Provider
from providers.civitai import TOKEN_ENV as CIVITAI_TOKEN_ENV
from providers.civitai import CivitaiConfig
from providers.download import DownloadConfig
from providers.spec import ProviderConfig

from providers.lifecycle import doctor_findings
from providers.download import SafeDownloader

if TYPE_CHECKING:  # pragma: no cover
    from providers.base import SecretSource


def _declared_name(node: ast.ClassDef) -> str | None:
    """The string assigned to ``name`` in the body of class ``node`` (``name = "x"`` or
    ``name: ClassVar[str] = "x"``), else None."""
    for stmt in node.body:
        target: ast.expr | None = stmt.target if isinstance(stmt, ast.AnnAssign) else None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
        value = getattr(stmt, "value", None)
        if isinstance(target, ast.Name) and target.id == "name" and isinstance(value, ast.Constant):
            return value.value if isinstance(value.value, str) else None
    return None


def _is_provider_class(node: ast.ClassDef) -> bool:
    """Whether ``node`` is ``class X(Provider)`` (or ``class X(base.Provider)``)."""
    return any(getattr(b, "id", getattr(b, "attr", None)) == "Provider" for b in node.bases)


def _module_providers(source: Path) -> list[tuple[str, str]]:
    """``(name, ClassName)`` of each named ``Provider`` subclass defined in ``source``."""
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and _is_provider_class(node)]
    return [(name, node.name) for node in classes if (name := _declared_name(node)) is not None]


def discover(package_dir: Path | None = None, package: str = "providers") -> dict[str, str]:
    """``{name: "module:Class"}`` for every module of ``package`` (found by
    ``pkgutil.iter_modules``, https://docs.python.org/3/library/pkgutil.html) whose source
    defines a ``Provider`` subclass with a ``name`` class attribute, sorted by name. The
    sources are parsed (``ast``), not imported. ValueError when two classes claim one name."""
    folder = package_dir or Path(__file__).resolve().parent
    found: dict[str, str] = {}
    for module in pkgutil.iter_modules([str(folder)]):
        if module.ispkg:
            continue
        for name, class_name in _module_providers(folder / f"{module.name}.py"):
            target = f"{package}.{module.name}:{class_name}"
            if found.setdefault(name, target) != target:
                raise ValueError(f"provider name {name!r} is declared by {found[name]} and {target}")
    return dict(sorted(found.items()))


#: Provider name -> ``"module:Class"``, discovered from this package, in alphabetical order.
PROVIDERS: dict[str, str] = discover()

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
