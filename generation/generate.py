"""Stage 3: generate one image through the provider chain (pure: no database write here).

``policy_refusal`` is the one content-policy gate before any provider call (the final
request: prompt, negative prompt, LoRA and model names, the reference image); ``call_chain`` runs
the chain for one request and returns a ``ChainOutcome`` (the result or the error, every
attempt, the budget settlements to write with the image's outcome, and the failure's
FailureKind); ``spool`` writes the bytes to ``<spool>/<image_id>.<ext>`` (atomically)
and returns the GeneratedImage. The orchestrator (generation/produce.py) persists each
outcome with one transition of storage/ledger.py.

``generate_image`` runs the whole step for one row outside a flow (tools, tests, the
chain benchmark): claim, generate, record, release.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.model import (
    Attempt,
    ControlInput,
    ControlUnit,
    FailureKind,
    GenerationRequest,
    GenerationResult,
    HiresFix,
    ImageStatus,
    StyleInput,
    StyleReference,
)
from domain.errors import ConfigError, ProviderError
from policy.gate import RequestParts, judge
from config.imaging import PolicyConfig
from providers.chain import BudgetGuard, ProviderChain
from providers.download import load_reference
from storage.crypto import cipher, is_encrypted
from storage.db import Database, ImageRecord
from storage.ledger import GeneratedImage, ImageLedger
from io import BytesIO
from PIL import Image
from imaging.safety import blocking, detect
from generation.budget import BudgetLedger
from storage.ledger import ClaimState
from contextlib import nullcontext

#: error classes of a failure that a later run may not meet again (outage, limits, keys, our bugs)
RETRYABLE_CLASSES = frozenset({"transient", "auth_billing", "circuit_open", "provider_bug", "exhausted"})


def spool_intact(row: ImageRecord) -> bool:
    """True when the row's spool file exists and matches its checksum."""
    if not row.spool_path or not row.checksum:
        return False
    path = Path(row.spool_path)
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == row.checksum


def request_of(row: ImageRecord) -> GenerationRequest:
    """The GenerationRequest stored on a planned row, with its pins (provider, model, LoRAs)
    img2img inputs, ControlNet units and the IP-Adapter style reference (the reference image,
    mask, control and style image bytes, loaded here: providers/download.py ``load_reference``;
    a ProviderError when one cannot be read)."""
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
        control_units=tuple(ControlInput(ControlUnit.model_validate(unit), load_reference(unit["image"])) for unit in options["controlnet"])
        if options.get("controlnet")
        else None,
        hires_fix=HiresFix.model_validate(options["hires_fix"]) if options.get("hires_fix") else None,
        style_reference=StyleInput(StyleReference.model_validate(options["ip_adapter"]), load_reference(options["ip_adapter"]["image"]))
        if options.get("ip_adapter")
        else None,
        prompt=row.prompt,
        negative_prompt=row.negative_prompt or "",
        width=row.width,
        height=row.height,
        num_inference_steps=row.num_inference_steps,
        guidance_scale=row.guidance_scale if row.guidance_scale is not None else 7.5,
        seed=row.seed,
        idempotency_key=row.idempotency_key,
    )


def request_parts(row: ImageRecord, request: GenerationRequest) -> RequestParts:
    """The texts of the request the provider receives: the expanded prompt (variant + wildcard
    choices + style), the negative prompt, the LoRA names (AUTOMATIC1111 appends them to the
    prompt as ``<lora:name:weight>``), the pinned model and the template's name."""
    names = tuple(name for name, _ in request.loras or ()) + ((row.template,) if row.template else ())
    names += tuple(control.unit.model for control in request.control_units or ())
    if request.style_reference is not None:
        names += (request.style_reference.unit.model,)
    return RequestParts(prompt=request.prompt, negative_prompt=request.negative_prompt, adapters=names, model=request.model or "")


def sent_images(request: GenerationRequest) -> list[tuple[str, bytes]]:
    """Every picture the provider receives with ``request``, named: the img2img reference,
    the ControlNet units' control images and the IP-Adapter style image (the mask is only
    black and white: what it covers is the reference's)."""
    images = [("reference", request.init_image)] if request.init_image is not None else []
    images += [(f"control image {i + 1}", control.image) for i, control in enumerate(request.control_units or ())]
    if request.style_reference is not None:
        images.append(("style image", request.style_reference.image))
    return images


def reference_refusal(image: bytes, policy: PolicyConfig, name: str = "reference") -> str | None:
    """Why the image classifier (imaging/safety.py, NudeNet) refuses a picture sent with a
    request (``name``: reference, control image N, style image), or None (also None when
    ``policy.image_safety`` is disabled)."""
    if not policy.image_safety.enabled:
        return None

    with Image.open(BytesIO(image)) as picture:
        picture.load()
        found = blocking(detect(picture, policy.image_safety), policy.image_safety)
    return f"{name} {found}" if found else None


def policy_refusal(row: ImageRecord, policy: PolicyConfig, request: GenerationRequest) -> str | None:
    """The ONE gate before every provider call (single image, batch, regenerate, ad hoc):
    why the content policy (policy.gate.judge) refuses the final ``request`` with its reference
    image, ``content policy: <reason>`` (fixed words, never the prompt), or None. The texts
    (prompt, negative prompt, LoRA, ControlNet and IP-Adapter model names) are judged with the
    picture the instruction applies to (the reference, else the style image); every picture
    sent (``sent_images``) goes through the image classifier."""
    images = sent_images(request)
    decision = judge(request_parts(row, request), images[0][1] if images else None, policy)
    if not decision.allowed:
        return f"content policy: {decision.reason}"
    for name, image in images:
        refused = reference_refusal(image, policy, name)
        if refused:
            return f"content policy: {refused}"
    return None


class ClaimBudget:
    """The budget guard of one claimed slot: reservations name the slot and the run (a dead
    run's are closed when its lease expires); settlements are kept for the slot's outcome
    transition, which writes them in its own transaction (storage/ledger.py)."""

    def __init__(self, budget: BudgetGuard | None, image_pk: int, run_key: str) -> None:
        self.budget = budget
        self.image_pk = image_pk
        self.run_key = run_key
        #: (reservation token, USD) in the order the chain settled them
        self.settlements: list[tuple[int, float]] = []

    def reserve(self, provider: str, estimate_usd: float, *, model: str | None = None) -> object:
        """Reserve ``estimate_usd`` (USD) for a call of ``provider`` (``model``); BudgetExceededError
        past a cap. With the budget ledger, the call's attempt row is written in flight in the same
        transaction (status ``in_flight``, at its reservation): a run killed during the call
        leaves it attributed to the image at what it may have billed."""
        assert self.budget is not None

        if isinstance(self.budget, BudgetLedger):
            return self.budget.reserve(provider, estimate_usd, image_pk=self.image_pk, run_key=self.run_key, model=model)
        return self.budget.reserve(provider, estimate_usd, model=model)

    def record_job(self, token: object, job_id: str) -> None:
        """Write ``job_id`` on the in-flight attempt row of reservation ``token`` (one transaction)."""

        if isinstance(self.budget, BudgetLedger) and isinstance(token, int):
            self.budget.record_job(token, job_id)

    def rebill(self, token: int, actual_usd: float) -> None:
        """Count reservation ``token`` at what its resumed job was billed (generation/budget.py)."""

        if isinstance(self.budget, BudgetLedger):
            self.budget.rebill(token, actual_usd)

    def pending_job(self, provider: str) -> Any:
        """The newest job of ``provider`` for this slot still to be polled (an in-flight or
        pending attempt row with a job id), or None (generation/budget.py ``pending_job_of``)."""

        if isinstance(self.budget, BudgetLedger):
            return self.budget.pending_job_of(self.image_pk, provider)
        return None

    def settle(self, token: object, actual_usd: float) -> None:
        """Keep the settlement for the outcome transition."""
        assert isinstance(token, int)
        self.settlements.append((token, actual_usd))


@dataclass
class ChainOutcome:
    """What the chain did for one request: ``result`` or ``error``, every attempt, the
    settlements to write with the outcome, and (on failure) its FailureKind."""

    result: GenerationResult | None
    error: ProviderError | None
    attempts: list[Attempt] = field(default_factory=list)
    settlements: list[tuple[int, float]] = field(default_factory=list)

    @property
    def kind(self) -> FailureKind:
        """Budget when a cap stopped every provider; transient when any provider failed in a
        way a later run may not meet (outage, 429, timeout, refused connection, keys);
        rejected when every provider refused (content filtered, validation, bad output)."""
        failed = [a for a in self.attempts if a.status != "success"]
        if failed and all(a.error_class == "budget" for a in failed):
            return FailureKind.budget
        if any(a.error_class in RETRYABLE_CLASSES for a in failed):
            return FailureKind.transient
        if any(a.error_class == "budget" for a in failed):
            return FailureKind.budget
        return FailureKind.rejected


def call_chain(chain: ProviderChain, request: GenerationRequest, budget: ClaimBudget | None) -> ChainOutcome:
    """Run ``chain`` for ``request``; never raises a ProviderError (it is in the outcome)."""
    attempts: list[Attempt] = []

    def on_attempt(attempt: Attempt) -> None:
        attempts.append(replace(attempt, at=attempt.at or datetime.now(UTC)))

    try:
        result = chain.generate(request, on_attempt, budget=budget)
    except ProviderError as exc:
        return ChainOutcome(None, exc, attempts, budget.settlements if budget else [])
    return ChainOutcome(result, None, attempts, budget.settlements if budget else [])


def spool(result: GenerationResult, spool_dir: Path, image_id: str) -> GeneratedImage:
    """Write ``result``'s bytes to ``<spool_dir>/<image_id>.<ext>`` (atomically) and describe them."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = spool_dir / f"{image_id}{_suffix(result.image)}"
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(result.image)
    os.replace(tmp, path)
    return GeneratedImage(
        provider=result.provider,
        model=result.model,
        seed=result.seed,
        width=result.width,
        height=result.height,
        is_placeholder=result.is_placeholder,
        seconds=result.latency_s,
        spool_path=str(path),
        checksum=hashlib.sha256(result.image).hexdigest(),
        mapped_size=result.mapped_size,
        device=result.metadata.get("device"),
    )


_PROMPT_WORD = re.compile(r"[^\W_]{3,}")


def scrub_prompt(text: str | None, row: ImageRecord) -> str | None:
    """``text`` (a provider's error) with every word of 3+ letters of the row's prompt and
    negative prompt replaced by ``[prompt]`` when the prompt is private (``embed_prompt:
    false``) or encrypted at rest (``PROMPT_ENCRYPTION_KEY``): a refusal that quotes the
    prompt never reaches ``images.error``, the attempts, the logs or the run summary."""
    if not text or not (row.prompt_private or cipher() is not None):
        return text
    words = {w.lower() for part in (row.prompt or "", row.negative_prompt or "") for w in _PROMPT_WORD.findall(part)}
    if not words:
        return text
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
    return pattern.sub("[prompt]", text)


def scrub_outcome(outcome: ChainOutcome, row: ImageRecord) -> ChainOutcome:
    """``outcome`` with its attempts' errors scrubbed (``scrub_prompt``; ``failure_reason``
    scrubs the error itself)."""
    attempts = [replace(a, error=scrub_prompt(a.error, row)) for a in outcome.attempts]
    return ChainOutcome(outcome.result, outcome.error, attempts, outcome.settlements)


def failure_reason(outcome: ChainOutcome) -> str:
    """The row's error for a failed chain: ``budget: ...`` when the caps stopped it."""
    message = str(outcome.error)[:1990]
    return f"budget: {message}" if outcome.kind is FailureKind.budget else message


def generate_image(db: Database, chain: ProviderChain, pk: int, *, spool_dir: Path, policy: PolicyConfig, ledger: ImageLedger | None = None) -> ImageRecord:
    """Generate row ``pk``'s image unless it already exists; returns the updated row.

    Outside a flow: claims the slot under a run key of its own, generates, records the
    outcome and releases the slot. Ends in ``generated`` (bytes spooled), ``blocked``
    (content policy), ``skipped`` (every provider was stopped by a budget cap) or
    ``failed`` (every provider failed; the reasons are on the row and its attempts).
    A slot another live run holds is returned as it is.
    """

    if ledger is None:
        budget = getattr(chain, "budget", None)
        settle = budget.settle_in if isinstance(budget, BudgetLedger) else None
        takeover = budget.close_for_claim if isinstance(budget, BudgetLedger) else None
        ledger = ImageLedger(db, settle=settle, on_takeover=takeover)
    run_key = f"local-{uuid.uuid4().hex[:12]}"
    claim = ledger.claim(pk, run_key)
    row = claim.row
    if claim.state is not ClaimState.claimed:
        return row
    status = ImageStatus(row.status)
    if status.rank >= ImageStatus.generated.rank and status is not ImageStatus.failed and spool_intact(row):
        return ledger.release(pk, run_key)
    try:
        row = generate_step(ledger, chain, row, run_key, spool_dir=spool_dir, policy=policy)
    except BaseException:
        ledger.release(pk, run_key)
        raise
    return row if row.run_key is None else ledger.release(pk, run_key)


def generate_step(
    ledger: ImageLedger,
    chain: ProviderChain,
    row: ImageRecord,
    run_key: str,
    *,
    spool_dir: Path,
    policy: PolicyConfig,
    semaphore: AbstractContextManager[object] | None = None,
    decoded: list[Any] | None = None,
    begun: bool = False,
) -> ImageRecord:
    """The generation step of a claimed row: -> generating, then generated / blocked /
    skipped / failed. ``semaphore`` (a context manager) is held around the chain call only.
    ``decoded``: receives the image as the output check decoded it (for post-processing).
    ``begun``: the claim already moved the row to ``generating`` (one transaction saved)."""

    prepared = prepare_step(ledger, row, run_key, policy=policy, begun=begun)
    if isinstance(prepared, ImageRecord):
        return prepared
    assert row.id is not None
    guard = ClaimBudget(chain.budget, row.id, run_key) if chain.budget is not None else None
    with semaphore if semaphore is not None else nullcontext():
        outcome = call_chain(chain, prepared, guard)
    return record_outcome(ledger, row, run_key, outcome, spool_dir=spool_dir, decoded=decoded)


def prepare_step(ledger: ImageLedger, row: ImageRecord, run_key: str, *, policy: PolicyConfig, begun: bool = False) -> GenerationRequest | ImageRecord:
    """Before the provider call of a claimed row: -> ``generating`` (unless ``begun``), then
    the row's GenerationRequest, or the row ended ``failed`` (its reference image cannot be
    read) / ``blocked`` (content policy). ConfigError when the prompt is encrypted with a
    key that is not set."""
    assert row.id is not None
    pk = row.id
    if is_encrypted(row.prompt):  # a key was there when it was planned, not now: never send the ciphertext
        raise ConfigError(f"image {row.image_id}: its prompt is encrypted at rest; set PROMPT_ENCRYPTION_KEY to the key used")
    if not begun:
        row = ledger.mark_generating(pk, run_key)
    try:
        request = request_of(row)
    except ProviderError as exc:  # the reference image or mask cannot be read: the same next time
        return ledger.mark_failed(pk, run_key, FailureKind.rejected, f"reference image: {str(exc)[:1980]}")
    refusal = policy_refusal(row, policy, request)
    if refusal:
        return ledger.mark_blocked(pk, run_key, refusal)
    return request


def record_outcome(
    ledger: ImageLedger, row: ImageRecord, run_key: str, outcome: ChainOutcome, *, spool_dir: Path, decoded: list[Any] | None = None
) -> ImageRecord:
    """After the provider call: the row -> ``generated`` (bytes spooled), ``skipped`` (budget
    caps) or ``failed``, with the outcome's attempts and budget settlements in the same
    transaction."""
    assert row.id is not None
    pk = row.id
    outcome = scrub_outcome(outcome, row)
    if outcome.result is None:
        kind = outcome.kind
        reason = scrub_prompt(failure_reason(outcome), row) or ""
        if kind is FailureKind.budget:
            return ledger.mark_skipped(pk, run_key, kind, reason, attempts=outcome.attempts, settlements=outcome.settlements)
        return ledger.mark_failed(pk, run_key, kind, reason, attempts=outcome.attempts, settlements=outcome.settlements)
    generated = spool(outcome.result, spool_dir, row.image_id)
    if decoded is not None and outcome.result.decoded is not None:
        decoded.append(outcome.result.decoded)
    return ledger.mark_generated(pk, run_key, generated, attempts=outcome.attempts, settlements=outcome.settlements)


def _suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[8:12] == b"WEBP":
        return ".webp"
    return ".bin"
