"""Typed configuration: one YAML file plus environment overrides, and secrets from the environment.

Sources, highest priority first:

1. environment variables ``CONTENT_PIPELINE_<FIELD>`` (nested with ``__``, e.g.
   ``CONTENT_PIPELINE_BUDGET__DAILY_USD=2.5``), then the same names in ``.env``;
2. the YAML file: ``$CONTENT_PIPELINE_CONFIG`` or ``./content-pipeline.yaml``;
3. the defaults below, which run offline.

Secrets (API keys, Apprise URLs) are never read from the YAML file: only from the
environment or ``.env`` (``Secrets``). Providers are not listed here: the ``providers:``
section and the provider secrets come from the provider registry (providers/registry.py),
where each provider module declares its own config model and secret variable names. ``get_settings()`` / ``get_secrets()`` are
cached factories; nothing is read at import time. An unknown key or a bad value raises
``ConfigError`` naming the file (or variable), the line, the key and the value.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from config.clients import ClientsConfig
from config.generation import ABConfig, BudgetConfig, PipelineConfig, ProcessingConfig, ScaleConfig
from config.imaging import (
    ChannelsConfig,
    C2paConfig,
    DecodeConfig,
    DedupConfig,
    PolicyConfig,
    PrivacyConfig,
    RenditionConfig,
    TaggingConfig,
    UpscaleConfig,
    WatermarkConfig,
    default_renditions,
)
from config.publishing import DeliveryConfig, PublishingConfig, store_url
from config.reporting import AlertsConfig
from config.secrets import ENV_PREFIX, Secrets, secret_fields
from domain.errors import ConfigError
from domain.yamlio import Locator, format_validation_error, load_yaml, shorten, shown
from providers.chain import RetryConfig
from providers.registry import PROVIDERS, ProvidersConfig
from providers.spec import ProviderConfig
from storage.objects import S3Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
import json
from dotenv import dotenv_values as read

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_ENV = "CONTENT_PIPELINE_CONFIG"
DEFAULT_CONFIG_NAME = "content-pipeline.yaml"


def _database_url(value: str | None) -> str | None:
    """A database URL SQLAlchemy can open with an installed driver
    (https://docs.sqlalchemy.org/en/20/core/engines.html#database-urls); ValueError naming
    what is wrong otherwise (the caller adds the key and the file)."""
    if value is None:
        return None

    hint = "e.g. sqlite:///path/to/file.db or postgresql+psycopg://user:password@host/name"
    try:
        url = make_url(value)
        url.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ValueError(f"unknown database kind {value.split(':', 1)[0][:40]!r} ({hint})") from None
    except ArgumentError:
        raise ValueError(f"not a database URL ({hint})") from None
    except ImportError as exc:
        raise ValueError(f"the driver of {url.drivername!r} is not installed (no module {exc.name!r}; {hint})") from None
    return value


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds the pre-parsed YAML mapping into pydantic-settings below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


_yaml_data: ContextVar[dict[str, Any] | None] = ContextVar("_yaml_data", default=None)


class _DotEnvAsEnvironment(PydanticBaseSettingsSource):
    """``.env`` read the way the environment is: only the variables that name a setting
    (``CONTENT_PIPELINE_<FIELD>``) are configuration. Every other variable in the file (API
    keys, ``DB_PASSWORD``, ``GITHUB_TOKEN`` ...) belongs to someone else and is ignored here,
    never reported as an unknown key (pydantic-settings' dotenv source turns them into extra
    keys under ``extra="forbid"``, and the error would echo their values)."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not isinstance(self._dotenv, EnvSettingsSource):  # pragma: no cover - pydantic-settings always gives one
            return {}
        # the field-by-field reading of EnvSettingsSource over the file's variables, without the extras
        return EnvSettingsSource.__call__(self._dotenv)


class Settings(BaseSettings):
    """The effective configuration. Paths are resolved against the config file's folder."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
        env_ignore_empty=True,
    )

    output_dir: Path = Path("output")
    templates_dir: Path = PROJECT_ROOT / "templates"
    database_url: str | None = None
    storage_url: str | None = None
    timezone: str = "UTC"
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    #: provider names in fallback order; ``CONTENT_PIPELINE_CHAIN=a,b`` (commas) or a JSON list
    chain: Annotated[list[str], Field(min_length=1), NoDecode] = Field(default_factory=lambda: ["automatic1111", "placeholder"])
    providers: ProvidersConfig = Field(default_factory=ProvidersConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    renditions: list[RenditionConfig] = Field(default_factory=default_renditions)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    styles: list[str] = Field(default_factory=lambda: ["soft natural light", "golden hour", "studio lighting", "high detail", "minimalist composition"])
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    c2pa: C2paConfig = Field(default_factory=C2paConfig)
    watermark: WatermarkConfig = Field(default_factory=WatermarkConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    s3: S3Config = Field(default_factory=S3Config)
    decode: DecodeConfig = Field(default_factory=DecodeConfig)
    upscale: UpscaleConfig = Field(default_factory=UpscaleConfig)
    tagging: TaggingConfig = Field(default_factory=TaggingConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    ab: ABConfig = Field(default_factory=ABConfig)
    processing: ProcessingConfig = Field(default_factory=ProcessingConfig)
    publishing: PublishingConfig = Field(default_factory=PublishingConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    #: Clients (brands): their categories and templates, budgets, alert targets, reviewers, webhooks.
    clients: ClientsConfig = Field(default_factory=ClientsConfig)
    config_file: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        dotenv = _DotEnvAsEnvironment(settings_cls, dotenv_settings)
        return (init_settings, env_settings, dotenv, _YamlSource(settings_cls, _yaml_data.get() or {}))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {shorten(value)}") from None
        return value

    @field_validator("storage_url")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        return store_url(value)

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, value: str | None) -> str | None:
        return _database_url(value)

    @field_validator("chain", mode="before")
    @classmethod
    def _split_chain(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON list: {exc.msg}") from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("chain")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in PROVIDERS:
                raise ValueError(f"unknown provider {name!r} (known: {', '.join(sorted(PROVIDERS))})")
        if len(set(value)) != len(value):
            raise ValueError("a provider appears twice in the chain")
        if "placeholder" in value[:-1]:  # it always answers: a provider after it would never be asked
            raise ValueError("placeholder must be the last provider of the chain (the providers after it are never tried)")
        return value

    def _resolve_c2pa_files(self, base: Path) -> None:
        """The C2PA certificate, key and trust anchors relative to ``base``; with signing on, each must exist."""
        for attr in ("certificate", "private_key", "trust_anchors"):
            value = getattr(self.c2pa, attr)
            if value is not None:
                value = (base / value).resolve()
                setattr(self.c2pa, attr, value)
                if self.c2pa.enabled and not value.is_file():
                    raise ValueError(f"c2pa.{attr}: file {str(value)!r} not found")

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        base = self.config_file.parent if self.config_file else Path.cwd()
        self.output_dir = (base / self.output_dir).resolve()
        self.templates_dir = (base / self.templates_dir).resolve()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.output_dir / 'content-pipeline.db'}"
        if self.storage_url is None:
            self.storage_url = self.output_dir.as_uri()
        if self.upscale.weights is not None:
            self.upscale.weights = (base / self.upscale.weights).resolve()
        if self.tagging.clip_weights is not None:
            self.tagging.clip_weights = (base / self.tagging.clip_weights).resolve()
        self._resolve_c2pa_files(base)
        for r in self.renditions:
            if r.upscaler == "model" and self.upscale.weights is None:
                raise ValueError(f"rendition {r.name!r} uses upscaler 'model' but upscale.weights is not set")
            if r.upscaler == "remote" and not self.upscale.remote_url:
                raise ValueError(f"rendition {r.name!r} uses upscaler 'remote' but upscale.remote_url is not set")
        names = [r.name for r in self.renditions] + [p.name for p in self.channels.resolved()]
        if len(set(names)) != len(names):
            raise ValueError(f"rendition names must be unique: {names}")
        return self

    @property
    def credentials_dir(self) -> Path:
        """Where the per-installation C2PA signer is made when no ``c2pa.certificate`` is set."""
        return self.output_dir / "credentials" / "c2pa"

    @property
    def spool_dir(self) -> Path:
        """Local folder where image bytes wait between stages."""
        return self.output_dir / "spool"

    def provider_config(self, name: str) -> ProviderConfig:
        """The validated ``providers.<name>`` config (the provider's own ``Config`` class)."""
        return self.providers.get(name)


def config_path() -> Path | None:
    """The YAML file in use: ``$CONTENT_PIPELINE_CONFIG`` or ``./content-pipeline.yaml`` when it exists."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    candidate = Path.cwd() / DEFAULT_CONFIG_NAME
    return candidate.resolve() if candidate.exists() else None


def _find_secrets(data: Any, path: tuple[str, ...] = (), fields: set[str] | None = None) -> list[tuple[str, ...]]:
    fields = secret_fields() if fields is None else fields
    found: list[tuple[str, ...]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).lower() in fields:
                found.append((*path, str(key)))
            found.extend(_find_secrets(value, (*path, str(key)), fields))
    return found


def _load_file(path: Path) -> tuple[dict[str, Any], Locator]:
    """The mapping in the YAML file ``path`` and its line locator; ConfigError when the file is
    missing, is not a mapping or holds a secret."""
    if not path.exists():
        raise ConfigError(f"{path}: configuration file not found (set by {CONFIG_ENV})")
    loaded, locate = load_yaml(path, error=ConfigError)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}:1: the configuration must be a mapping of keys, not {type(loaded).__name__}")
    for secret_path in _find_secrets(loaded):
        line = locate(secret_path)
        raise ConfigError(f"{path}:{line}: key {'.'.join(secret_path)!r} is a secret: set it in the environment or .env, never in the file")
    return loaded, locate


def load_settings(path: Path | None = None) -> Settings:
    """Build the settings from ``path`` (or ``config_path()``) and the environment.

    Raises ConfigError naming the file, line, key and value of the first problems.
    """
    path = path if path is not None else config_path()
    dotenv = dotenv_values()
    data: dict[str, Any] = {}
    locate: Locator | None = None
    if path is not None:
        data, locate = _load_file(path)
    token = _yaml_data.set(data)
    try:
        return Settings(config_file=path)
    except SettingsError as exc:  # an environment value that is not valid JSON for a list / mapping field
        found = re.search(r'field "([^"]+)"', str(exc))
        name = ENV_PREFIX + (found.group(1).upper() if found else "")
        value = os.environ.get(name)
        echoed = f" = {shown(name, value)}" if value is not None else ""
        raise ConfigError(
            f"environment {name}{echoed}: cannot be parsed; a list or mapping is written as JSON, "
            f'e.g. ["a", "b"] or {{"key": 1}}, or set nested keys as {name}__KEY'
        ) from None
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            env_name = ENV_PREFIX + "__".join(loc).upper()
            if env_name in os.environ:
                messages.append(f"environment {env_name} = {shown(env_name, os.environ[env_name])}: {str(err['msg'])[:300]}")
            elif env_name in dotenv:
                messages.append(f"{DOTENV} {env_name} = {shown(env_name, dotenv[env_name])}: {str(err['msg'])[:300]}")
        detail = format_validation_error(exc, source=str(path) if path else "configuration", locate=locate, model=Settings)
        raise ConfigError("\n".join(messages) or detail) from None
    finally:
        _yaml_data.reset(token)


#: The dotenv file read from the working directory (pydantic-settings' ``env_file``).
DOTENV = ".env"


def dotenv_values() -> dict[str, str | None]:
    """The variables of ``.env`` in the working directory ({} when there is none).

    Raises ConfigError naming the file and line when it is not UTF-8 text (python-dotenv,
    which pydantic-settings reads it with, would fail with a traceback)."""

    file = Path(DOTENV)
    if not file.is_file():
        return {}
    try:
        raw = file.read_bytes()
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{file.resolve()}:{line}: not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{file.resolve()}: cannot read: {exc.strerror}") from None
    return dict(read(file))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; ``get_settings.cache_clear()`` to reload)."""
    return load_settings()


@lru_cache(maxsize=1)
def get_secrets() -> Secrets:
    """The process-wide secrets (cached). ConfigError for a .env that is not UTF-8 text or an
    Apprise URL with a wrong scheme (``htps://``)."""
    dotenv_values()
    secrets = Secrets()
    problems = secrets.url_problems()
    if problems:
        raise ConfigError(problems[0])
    return secrets
