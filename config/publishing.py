"""Configuration of publishing: review, backup, delivery by Apprise and webhooks (the
``publishing`` and ``delivery`` keys of config/settings.py ``Settings``)."""

from __future__ import annotations

import difflib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.yamlio import shorten
from urllib.parse import urlparse

_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf / nan are never a valid setting


def scheme_problem(url: str, *, web_only: bool) -> str | None:
    """None when ``url``'s scheme can be right, else what is wrong: no ``scheme://``, a
    scheme other than http(s) where only those work (``web_only``: webhooks), or a
    misspelling of http / https (``htps://``) anywhere (Apprise URLs)."""
    scheme = url.split("://", 1)[0].strip().lower() if "://" in url else ""
    if not scheme:
        return f"{shorten(url)}: no scheme: write https://host/path" + ("" if web_only else " (or any Apprise URL: mailto://, ntfy://, json://...)")
    if scheme in ("http", "https"):
        return None
    near = difflib.get_close_matches(scheme, ["https", "http"], n=1, cutoff=0.75)
    if near:
        return f"scheme {scheme[:20]!r} is not {near[0]!r}: write {near[0]}://..."
    if web_only:
        return f"scheme {scheme[:20]!r}: a webhook URL is https:// (http:// on a private network)"
    return None


def store_url(value: str | None) -> str | None:
    """A storage or backup URL the object stores open (storage/objects.py ``open_store``):
    a folder path, ``file:///path`` or ``s3://bucket[/prefix]``; ValueError otherwise."""
    if value is None or not value.strip():
        return None

    parsed = urlparse(value.strip())
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and value[1:3] in (":\\", ":/")):
        return value.strip()
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{shorten(value)}: an S3 URL names its bucket (s3://bucket/prefix)")
        return value.strip()
    raise ValueError(f"unsupported scheme {parsed.scheme!r} in {shorten(value)} (a folder, file:///path or s3://bucket/prefix)")


ReviewMode = Literal["required", "auto"]


class PublishingConfig(BaseModel):
    """The publishing step (publishing/review.py, publishing/publish.py).

    ``review``: per category, ``required`` (stored images wait ``in_review`` under
    ``review/`` and the flow run suspends for a person's decision in the Prefect UI, or
    the CLI's ``review approve|reject``) or ``auto`` (published at once under
    ``content/``); ``"*"`` sets the default of unlisted categories (else ``default_review``).
    ``review_timeout_s``: seconds a suspended run waits for the decision before it fails
    (the images stay ``in_review`` for the CLI). ``max_review_rounds``: review, regenerate,
    review again at most this many times in one run. ``backup_url``: a second store
    (``file:///path`` or ``s3://bucket/prefix``, same S3 options and credentials as
    ``storage_url``) every published object is copied to (``content-pipeline backup verify``).
    ``on_demand_template``: per category, the template ``reserve`` asks an ad-hoc
    generation of when no image is free (the ``generate`` deployment; none: refuse).
    """

    model_config = _Strict
    review: dict[str, ReviewMode] = Field(default_factory=dict)
    default_review: ReviewMode = "auto"
    review_timeout_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 7 * 86400
    max_review_rounds: Annotated[int, Field(ge=1, le=20)] = 3
    backup_url: str | None = None
    on_demand_template: dict[str, str] = Field(default_factory=dict)

    @field_validator("backup_url")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        return store_url(value)

    def review_mode(self, category: str) -> ReviewMode:
        """``required`` or ``auto`` for ``category``."""
        return self.review.get(category, self.review.get("*", self.default_review))


class WebhookConfig(BaseModel):
    """One webhook: a JSON POST per published image to ``url``, signed with HMAC-SHA256 of
    the body (header ``X-Content-Pipeline-Signature: sha256=<hex>``) keyed by the value of
    the environment variable ``secret_env`` (never in this file). ``include_prompt``: send
    the prompt (false for private prompts). Retries: ``max_attempts`` POSTs in all, waiting
    ``backoff_s`` x 2^n seconds between them; ``timeout_s`` per POST."""

    model_config = _Strict
    url: str
    secret_env: Annotated[
        str,
        Field(
            pattern=r"^[A-Z_][A-Z0-9_]*$",
            description="HMAC-SHA256 key of the publishing webhooks (delivery.webhooks[].secret_env names the variable)",
        ),
    ] = "CONTENT_PIPELINE_WEBHOOK_SECRET"
    include_prompt: bool = True
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 4

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        problem = scheme_problem(value, web_only=True)
        if problem:
            raise ValueError(problem)
        return value

    backoff_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0


class DeliveryConfig(BaseModel):
    """Announcing published images: an Apprise notification (URLs from the environment,
    ``PUBLISH_APPRISE_URLS``, separate from the alerts' ``APPRISE_URLS``) with the count and
    links, and ``webhooks``. Webhook URLs must be https to public addresses (the same guard
    as provider downloads) unless ``allow_private_addresses`` (a receiver on this network);
    ``link_expires_s``: lifetime of the presigned links (S3) in seconds."""

    model_config = _Strict
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    allow_private_addresses: bool = False
    link_expires_s: Annotated[int, Field(ge=60, le=604800)] = 604800
