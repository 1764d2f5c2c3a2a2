"""Announcing published images: an Apprise notification and signed JSON webhooks.

* Apprise (https://github.com/caronc/apprise): one notification per publishing batch
  with the count and a link per image, to the URLs of ``PUBLISH_APPRISE_URLS`` (separate
  from the alerts' ``APPRISE_URLS``; the URLs carry tokens and are never logged or stored).
* Webhooks (``delivery.webhooks``): one ``POST`` per published image, body JSON
  (``webhook_payload``), header ``X-Content-Pipeline-Signature: sha256=<hex>`` = HMAC-SHA256
  (RFC 2104, https://www.rfc-editor.org/rfc/rfc2104) of the exact body bytes keyed by the
  secret in the environment variable ``secret_env``, as GitHub signs its webhooks
  (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries);
  ``Idempotency-Key: <image_id>`` lets the receiver drop a repeated delivery. Network
  errors, 408, 429 and 5xx are retried with exponential backoff (``backoff_s`` x 2^n
  seconds) up to ``max_attempts`` POSTs; other answers end the delivery. Every delivery
  is recorded (``deliveries`` table) with its outcome and attempts.
* A webhook URL must be https to a public address: the same guard as provider downloads
  (providers.download.SafeDownloader.check_url) refuses private, loopback, link-local
  and other non-public addresses, unless ``delivery.allow_private_addresses``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from domain.errors import UnsafeURLError
from domain.log import get_logger
from config.publishing import DeliveryConfig, WebhookConfig
from config.secrets import Secrets
from providers.download import SafeDownloader, masked_url
from storage.db import Database, DeliveryRecord, ImageRecord
from storage.objects import ObjectStore
from storage.crypto import is_encrypted
from reporting.alerts import send_apprise

SIGNATURE_HEADER = "X-Content-Pipeline-Signature"
EVENT = "image.published"


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body keyed by secret>`` (the signature header's value)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeURLError unless ``url`` may receive webhooks: https to public addresses
    (SafeDownloader.check_url), or with ``allow_private`` any http(s) URL without credentials."""
    if not allow_private:
        SafeDownloader().check_url(url)
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURLError(f"refused webhook URL: {masked_url(url)} is not http(s)")
    if parts.username or parts.password:
        raise UnsafeURLError(f"refused webhook URL: credentials in the URL: {masked_url(url)}")


def webhook_payload(row: ImageRecord, files: Sequence[Any], store: ObjectStore, *, include_prompt: bool, link_expires_s: int) -> dict[str, Any]:
    """The JSON body for one published image: ids, version, keys and (presigned or public)
    URLs of every stored file, prompt (unless ``include_prompt`` is false or the prompt is
    private: ``embed_prompt: false``, or encrypted at rest without its key), tags, quality score."""
    keys = {f.name: f.storage_key for f in files}
    if row.sidecar_key:
        keys["provenance"] = row.sidecar_key
    return {
        "event": EVENT,
        "id": row.image_id,
        "idempotency_key": row.idempotency_key,
        "version": row.version,
        "category": row.category,
        "template": row.template,
        "provider": row.provider,
        "keys": keys,
        "urls": {name: store.presigned_url(key, link_expires_s) for name, key in keys.items()},
        "prompt": row.prompt if include_prompt and not _private(row) else None,
        "tags": list(row.tags or []),
        "quality_score": row.quality_score,
        "width": row.width,
        "height": row.height,
        "published_at": row.published_at.isoformat() if row.published_at else None,
    }


def _private(row: ImageRecord) -> bool:
    """The prompt stays in: a private prompt (``embed_prompt: false``) or one still encrypted."""

    return bool(getattr(row, "prompt_private", False)) or is_encrypted(row.prompt)


@dataclass(frozen=True)
class Outcome:
    """How one delivery ended: ``delivered`` / ``failed`` / ``refused``, after ``attempts`` tries."""

    status: str
    attempts: int
    http_status: int | None = None
    error: str | None = None


RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


def post_webhook(
    hook: WebhookConfig, body: bytes, secret: str, idempotency_key: str, *, allow_private: bool, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    """POST ``body`` to ``hook.url`` signed with ``secret``, retrying (see the module doc)."""
    try:
        check_webhook_url(hook.url, allow_private=allow_private)
    except UnsafeURLError as exc:
        return Outcome("refused", 0, error=str(exc))
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        "X-Content-Pipeline-Event": EVENT,
        "Idempotency-Key": idempotency_key,
        "user-agent": "content-pipeline-webhook/1",
    }
    last_status: int | None = None
    last_error: str | None = None
    with httpx.Client(timeout=hook.timeout_s, follow_redirects=False, trust_env=False) as client:
        for attempt in range(1, hook.max_attempts + 1):
            try:
                response = client.post(hook.url, content=body, headers=headers)
                last_status, last_error = response.status_code, None
                if 200 <= response.status_code < 300:
                    return Outcome("delivered", attempt, response.status_code)
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRY_STATUSES:
                    return Outcome("failed", attempt, last_status, last_error)
            except httpx.HTTPError as exc:
                last_status, last_error = None, f"{type(exc).__name__}: {exc}"
            if attempt < hook.max_attempts:
                sleep(hook.backoff_s * 2 ** (attempt - 1))
    return Outcome("failed", hook.max_attempts, last_status, last_error)


def deliver_webhooks(
    db: Database,
    store: ObjectStore,
    config: DeliveryConfig,
    rows: Sequence[ImageRecord],
    *,
    environ: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DeliveryRecord]:
    """Every configured webhook for every row of ``rows``; each outcome recorded and returned."""
    env = os.environ if environ is None else environ
    log = get_logger()
    records: list[DeliveryRecord] = []
    for hook in config.webhooks:
        secret = env.get(hook.secret_env, "")
        for row in rows:
            assert row.id is not None
            if not secret:
                outcome = Outcome("failed", 0, error=f"the webhook secret variable {hook.secret_env} is not set")
            else:
                payload = webhook_payload(row, db.renditions(row.id), store, include_prompt=hook.include_prompt, link_expires_s=config.link_expires_s)
                body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
                outcome = post_webhook(hook, body, secret, row.image_id, allow_private=config.allow_private_addresses, sleep=sleep)
            record = DeliveryRecord(
                image_pk=row.id,
                kind="webhook",
                target=masked_url(hook.url),
                status=outcome.status,
                attempts=outcome.attempts,
                http_status=outcome.http_status,
                error=outcome.error[:2000] if outcome.error else None,
            )
            with db.write_session() as session:
                session.add(record)
                session.commit()
                session.refresh(record)
            (log.info if outcome.status == "delivered" else log.warning)(
                "webhook %s for image %s: %s after %d attempt(s)%s",
                masked_url(hook.url),
                row.image_id,
                outcome.status,
                outcome.attempts,
                f" ({outcome.error})" if outcome.error else "",
            )
            records.append(record)
    return records


def announce(db: Database, store: ObjectStore, secrets: Secrets, rows: Sequence[ImageRecord], *, link_expires_s: int = 604800) -> DeliveryRecord | None:
    """One Apprise notification for ``rows``: the count, then a line and a link per image.
    None (and only a log line) when no ``PUBLISH_APPRISE_URLS`` is configured or nothing was published."""

    urls = secrets.publish_apprise_url_list()
    if not rows:
        return None
    lines = [f"{len(rows)} image{'s' if len(rows) != 1 else ''} published:"]
    for row in rows:
        link = store.presigned_url(row.storage_key, link_expires_s) if row.storage_key else "-"
        lines.append(f"- {row.image_id} v{row.version} {row.category}/{row.template or '-'}: {link}")
    title = f"content-pipeline: {len(rows)} image{'s' if len(rows) != 1 else ''} published"
    if not urls:
        get_logger().info("%s (no PUBLISH_APPRISE_URLS configured: not sent)", title)
        return None
    delivered = send_apprise(urls, title, "\n".join(lines))
    record = DeliveryRecord(
        kind="apprise",
        target="apprise",
        status="delivered" if delivered else "failed",
        attempts=1,
        error=None if delivered else "no Apprise URL accepted the notification",
    )
    with db.write_session() as session:
        session.add(record)
        session.commit()
        session.refresh(record)
    return record
