"""What clients change in publishing (config/clients.py): who may decide a client's images,
and where its published images' webhooks go.

* Reviewers: a client with a ``reviewers`` list lets only those names approve, reject or
  regenerate its images (the CLI's ``--reviewer``, the Resume form's reviewer field);
  anyone else is refused with ReviewerRefusedError (one line) and the image stays in review.
  An image of no client, or of a client without a list, may be decided by anyone.
* Webhooks: a client's published images go to the client's ``webhooks`` INSTEAD of the
  global ``delivery.webhooks`` (one brand's images never reach another brand's receiver);
  a client without webhooks, and images of no client, use the global ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config.clients import ClientsConfig
from config.publishing import DeliveryConfig
from domain.errors import ReviewerRefusedError
from publishing.delivery import deliver_webhooks
from storage.db import Database, DeliveryRecord, ImageRecord
from storage.objects import ObjectStore


def check_reviewer(clients: ClientsConfig, row: ImageRecord, reviewer: str) -> None:
    """Raise ReviewerRefusedError unless ``reviewer`` may decide ``row`` (see the module doc)."""
    owner = clients.get(row.client)
    if owner is None or owner.may_review(reviewer):
        return
    raise ReviewerRefusedError(
        f"reviewer {reviewer.strip()[:60]!r} may not decide image {row.image_id}: client {row.client!r} accepts only {', '.join(owner.reviewers)}"
    )


def deliver_by_client(
    db: Database, store: ObjectStore, delivery: DeliveryConfig, clients: ClientsConfig, rows: Sequence[ImageRecord], **options: Any
) -> list[DeliveryRecord]:
    """publishing.delivery.deliver_webhooks for ``rows``, each client's rows to the client's
    own webhooks when it has any, the others to ``delivery.webhooks``; every outcome recorded."""
    groups: dict[str | None, list[ImageRecord]] = {}
    for row in rows:
        owner = clients.get(row.client)
        groups.setdefault(row.client if owner is not None and owner.webhooks else None, []).append(row)
    records: list[DeliveryRecord] = []
    for client, members in groups.items():
        owner = clients.get(client)
        config = delivery if owner is None else delivery.model_copy(update={"webhooks": owner.webhooks})
        records += deliver_webhooks(db, store, config, members, **options)
    return records
