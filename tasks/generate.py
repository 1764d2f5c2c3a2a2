"""Stage 3: generate the image of one planned row through the provider chain.

The prompt first passes the content policy (refused -> status ``blocked``). The row
moves to ``generating`` before the chain is called and to ``generated`` once the
bytes are in the spool folder (``<spool>/<image_id>.<ext>``, SHA-256 on the row). A
row already ``generated`` whose spool file is intact is not generated again: a
resumed run never pays twice. Every attempt is recorded as it happens.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from core.domain import Attempt, GenerationRequest, ImageStatus
from core.errors import ConfigError, ContentPolicyError, ProviderError
from core.policy import check_prompt
from core.settings import PolicyConfig
from providers.chain import ProviderChain
from providers.download import load_reference
from storage.crypto import is_encrypted
from storage.db import Database, ImageRecord, utcnow


def spool_intact(row: ImageRecord) -> bool:
    """True when the row's spool file exists and matches its checksum."""
    if not row.spool_path or not row.checksum:
        return False
    path = Path(row.spool_path)
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == row.checksum


def request_of(row: ImageRecord) -> GenerationRequest:
    """The GenerationRequest stored on a planned row, with its pins (provider, model, LoRAs)
    and img2img inputs (the reference image and mask bytes, loaded here: providers/download.py
    ``load_reference``; a ProviderError when one cannot be read)."""
    assert row.prompt is not None and row.width and row.height and row.num_inference_steps
    options = row.request_options or {}
    loras = options.get("loras")
    return GenerationRequest(
        provider=options.get("provider"),
        model=options.get("model"),
        loras=tuple((str(name), float(weight)) for name, weight in loras) if loras else None,
        init_image=load_reference(options["reference_image"]) if options.get("reference_image") else None,
        mask_image=load_reference(options["mask"]) if options.get("mask") else None,
        strength=options.get("strength"),
        prompt=row.prompt,
        negative_prompt=row.negative_prompt or "",
        width=row.width,
        height=row.height,
        num_inference_steps=row.num_inference_steps,
        guidance_scale=row.guidance_scale if row.guidance_scale is not None else 7.5,
        seed=row.seed,
        idempotency_key=row.idempotency_key,
    )


def generate_image(db: Database, chain: ProviderChain, pk: int, *, spool_dir: Path, policy: PolicyConfig) -> ImageRecord:
    """Generate row ``pk``'s image unless it already exists; returns the updated row.

    Ends in status ``generated`` (bytes spooled), ``blocked`` (content policy),
    ``skipped`` (every provider was stopped by a budget cap) or ``failed`` (every
    provider failed; the reasons are on the row and its attempts).
    """
    row = db.get(pk)
    status = ImageStatus(row.status)
    if status.terminal or (status.rank >= ImageStatus.generated.rank and spool_intact(row)):
        return row
    if is_encrypted(row.prompt):  # a key was there when it was planned, not now: never send the ciphertext
        raise ConfigError(f"image {row.image_id}: its prompt is encrypted at rest; set PROMPT_ENCRYPTION_KEY to the key used")
    try:
        request = request_of(row)
    except ProviderError as exc:
        return db.advance(pk, ImageStatus.failed, error=f"reference image: {str(exc)[:1980]}")
    try:
        # the whole expanded prompt (variant + wildcard choices + style) and the template name
        check_prompt(f"{request.prompt}\n{row.template or ''}", deny_terms=policy.deny_terms, private_people=policy.private_people)
    except ContentPolicyError as exc:
        return db.advance(pk, ImageStatus.blocked, error=f"content policy: {exc.reason}")
    if status.rank < ImageStatus.generating.rank:
        row = db.advance(pk, ImageStatus.generating)  # a lost spool file is made again from its status
    seen: list[Attempt] = []

    def on_attempt(attempt: Attempt) -> None:
        seen.append(attempt)
        db.add_attempt(pk, attempt)

    try:
        result = chain.generate(request, on_attempt=on_attempt)
    except ProviderError as exc:
        if any(a.error_class == "budget" for a in seen) and all(a.status == "skipped" for a in seen):
            # no provider was even called: the budget caps stopped every one (status "skipped", reason "budget")
            return db.advance(pk, ImageStatus.skipped, error=f"budget: {str(exc)[:1990]}")
        return db.advance(pk, ImageStatus.failed, error=str(exc)[:2000])
    spool_dir.mkdir(parents=True, exist_ok=True)
    suffix = _suffix(result.image)
    path = spool_dir / f"{row.image_id}{suffix}"
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(result.image)
    os.replace(tmp, path)
    total_cost = sum(a.cost_usd for a in db.attempts(pk))
    return db.advance(
        pk,
        ImageStatus.generated,
        provider=result.provider,
        model=result.model,
        seed=result.seed,
        width=result.width,
        height=result.height,
        is_placeholder=result.is_placeholder,
        cost_usd=total_cost,
        mapped_size=result.mapped_size,
        seconds=round(result.latency_s, 4),
        spool_path=str(path),
        checksum=hashlib.sha256(result.image).hexdigest(),
        generated_at=utcnow(),
        error=None,
    )


def _suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[8:12] == b"WEBP":
        return ".webp"
    return ".bin"
