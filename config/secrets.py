"""Secrets: credentials read only from the environment or ``.env``, never from the YAML
file (``Secrets`` and its provider source), the YAML keys refused as secrets, and masking
for display. config/settings.py ``get_secrets()`` is the cached factory."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from providers.registry import secret_env_names

#: The prefix of every environment variable that names a setting or a project secret.
ENV_PREFIX = "CONTENT_PIPELINE_"


class _ProviderSecretsSource(PydanticBaseSettingsSource):
    """The provider secrets: every environment variable a registered provider declares
    (``secret_env``), from the environment, else from ``.env``; empty values are no key."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        from_file = {str(k).upper(): v for k, v in (getattr(self._dotenv, "env_vars", None) or {}).items()}
        found: dict[str, str] = {}
        for names in secret_env_names().values():
            for env_name in names:
                value = os.environ.get(env_name) or from_file.get(env_name)
                if value and value.strip():
                    found[env_name] = value.strip()
        return {"provider_secrets": found} if found else {}


class Secrets(BaseSettings):
    """Credentials, only from the environment or ``.env``; never logged or stored.

    ``provider_secrets``: environment variable name -> value, for the names the
    registered providers declare (``Provider.secret_env``); ``lookup(names)`` reads them.
    Tests pass them directly: ``Secrets(_env_file=None, provider_secrets={"FAL_KEY": "..."})``.
    """

    # an empty value (KEY= copied from .env.example) is no key: env_ignore_empty
    # (https://docs.pydantic.dev/latest/concepts/pydantic_settings/#parsing-environment-variable-values)
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    provider_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    apprise_urls: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("APPRISE_URLS", f"{ENV_PREFIX}APPRISE_URLS"),
        description="Apprise URLs of the alerts, separated by spaces or commas, e.g. mailto://... slack://... ntfy://...",
    )
    publish_apprise_urls: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("PUBLISH_APPRISE_URLS", f"{ENV_PREFIX}PUBLISH_APPRISE_URLS"),
        description="Apprise URLs announcing published images (separate from the alerts' APPRISE_URLS)",
    )
    # S3 credentials for an s3:// storage_url (when absent, boto3's own chain: environment, profile, role)
    aws_access_key_id: SecretStr | None = Field(
        None, validation_alias="AWS_ACCESS_KEY_ID", description="S3 / MinIO / R2 access key for an s3:// storage_url (else boto3's profile or role)"
    )
    aws_secret_access_key: SecretStr | None = Field(None, validation_alias="AWS_SECRET_ACCESS_KEY", description="the secret of AWS_ACCESS_KEY_ID")
    aws_session_token: SecretStr | None = Field(None, validation_alias="AWS_SESSION_TOKEN", description="temporary S3 credentials only: their session token")
    #: Fernet key(s) encrypting prompts at rest (storage.crypto); the C2PA signing key as PEM
    prompt_encryption_key: SecretStr | None = Field(
        None, validation_alias="PROMPT_ENCRYPTION_KEY", description="Fernet key(s) encrypting prompts at rest, comma-separated, newest first (storage.crypto)"
    )
    c2pa_private_key: SecretStr | None = Field(None, validation_alias="C2PA_PRIVATE_KEY", description="the C2PA signing key as PEM")
    trigger_secret: SecretStr | None = Field(
        None,
        validation_alias="CONTENT_PIPELINE_TRIGGER_SECRET",
        description="HMAC-SHA256 key of the signed inbound trigger (content-pipeline trigger serve; 16 characters or more)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _ProviderSecretsSource(settings_cls, dotenv_settings))

    def lookup(self, names: Sequence[str]) -> str | None:
        """The first non-empty value among the environment variables ``names`` (never log it)."""
        for env_name in names:
            value = self.provider_secrets.get(env_name)
            if value is not None and value.get_secret_value().strip():
                return value.get_secret_value()
        return None

    def aws_credentials(self) -> dict[str, str]:
        """boto3 client keyword arguments for the AWS_* secrets that are set (``.env`` included)."""
        names = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        return {n: v.get_secret_value() for n in names if (v := getattr(self, n)) is not None and v.get_secret_value()}

    def apprise_url_list(self) -> list[str]:
        """The configured Apprise URLs (separated by whitespace or commas)."""
        if self.apprise_urls is None:
            return []
        return [u for u in re.split(r"[\s,]+", self.apprise_urls.get_secret_value()) if u]

    def publish_apprise_url_list(self) -> list[str]:
        """The Apprise URLs that announce published images (whitespace or commas between)."""
        if self.publish_apprise_urls is None:
            return []
        return [u for u in re.split(r"[\s,]+", self.publish_apprise_urls.get_secret_value()) if u]

    def url_problems(self) -> list[str]:
        """One line per Apprise URL whose scheme is wrong (``config.publishing.scheme_problem``),
        naming the variable and the entry, never the rest of the URL (it holds tokens)."""
        from config.publishing import scheme_problem  # noqa: PLC0415 - a sibling config module, loaded only when the URLs are checked

        problems = []
        for name, urls in (("APPRISE_URLS", self.apprise_url_list()), ("PUBLISH_APPRISE_URLS", self.publish_apprise_url_list())):
            for position, url in enumerate(urls, 1):
                problem = scheme_problem(url.split("://", 1)[0] + "://" if "://" in url else "(no scheme)", web_only=False)
                if problem:
                    problems.append(f"environment {name} entry #{position}: {problem}")
        return problems

    def masked(self) -> dict[str, str | None]:
        """Every secret by environment variable name, masked (``hf_***``) or None when unset."""
        shown: dict[str, str | None] = {name: mask(value.get_secret_value()) for name, value in sorted(self.provider_secrets.items())}
        for field_name in ("apprise_urls", "publish_apprise_urls", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
            value = getattr(self, field_name)
            shown[field_name.upper()] = mask(value.get_secret_value()) if value is not None else None
        return shown

    def known_values(self) -> list[str]:
        """Every secret value, for scrubbing from logs and stored messages."""
        values = [s.get_secret_value() for s in self.provider_secrets.values()]
        values += [s.get_secret_value() for s in self.__dict__.values() if isinstance(s, SecretStr)]
        return [v for v in values if v] + [u for u in self.apprise_url_list() if u]


#: YAML keys that hold secrets and so are refused in the file: generic names, and every
#: provider secret's name and environment variable (lower case).
_GENERIC_SECRET_FIELDS = {
    "apprise_urls",
    "apprise_url",
    "api_key",
    "token",
    "password",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "secret_access_key",
    "prompt_encryption_key",
    "c2pa_private_key",
    # publishing: its Apprise URLs, a webhook secret written in the file by mistake
    "publish_apprise_urls",
    "secret",
    "webhook_secret",
    "hmac_secret",
}


def secret_fields() -> set[str]:
    """The lower-case YAML keys refused as secrets (see ``_GENERIC_SECRET_FIELDS``)."""
    fields = set(_GENERIC_SECRET_FIELDS)
    for qualified, names in secret_env_names().items():
        fields.add(qualified.split(".", 1)[1].lower())
        fields.update(n.lower() for n in names)
    return fields


def mask(value: str) -> str:
    """``'hf_abcdef...'`` -> ``'hf_***'``: enough to recognise, nothing to use."""
    if len(value) <= 6:
        return "***"
    return value[:3] + "***"
