"""Channel renditions of one image (``channels`` in the configuration; imaging/channels.py
decides crop or outpaint): an attention crop when the subject fits the preset's aspect
ratio, else an outpainting through an inpainting provider of the chain.

The outpainting is a provider call like any other: the request (the image's own prompt,
negative prompt and seed, the padded canvas as the init image, the new area as the mask,
pinned to ``channels.provider`` when set) goes through the content-policy gate
(generation.generate ``policy_refusal``), then the chain with the budget guard bound to the
image's claim (``ClaimBudget``: the reservation before the call, the settlement after it);
its attempts and settlements are recorded on the image row in one transaction
(storage.ledger ``record_calls``), so the image's cost and the budget count it. A refused,
failed, budget-stopped or placeholder outpainting falls back to the attention crop (logged).
The files carry the image's provenance (the outpainting provider added) and, when C2PA is
on, signed Content Credentials (imaging.credentials ``sign_files``).
"""

from __future__ import annotations

import io
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path

from PIL import Image

from config.imaging import ChannelPreset, RenditionConfig
from config.settings import get_secrets
from config.settings import Settings
from domain.log import get_logger, image_line
from domain.model import GenerationRequest, GenerationResult
from imaging.channels import Outpaint, plan_channel
from imaging.credentials import sign_files
from imaging.decode import decode_image
from imaging.postprocess import RenditionFile, render_one
from imaging.provenance import Provenance
from providers.chain import ProviderChain
from storage.db import ImageRecord
from storage.ledger import ImageLedger
from generation.generate import ClaimBudget, call_chain, policy_refusal, scrub_outcome


def outpaint_request(row: ImageRecord, plan: Outpaint, settings: Settings, preset: ChannelPreset) -> GenerationRequest:
    """The inpainting request of ``plan`` for image ``row``: its prompt, negative prompt,
    steps, guidance and seed; the canvas and mask at their size; no pins, LoRAs, ControlNet,
    style or hires fix (the template's model may not inpaint); pinned to ``channels.provider`` when set."""
    assert row.prompt is not None and row.num_inference_steps
    return GenerationRequest(
        prompt=row.prompt,
        negative_prompt=row.negative_prompt or "",
        width=plan.width,
        height=plan.height,
        num_inference_steps=row.num_inference_steps,
        guidance_scale=row.guidance_scale if row.guidance_scale is not None else 7.5,
        seed=row.seed,
        init_image=plan.canvas,
        mask_image=plan.mask,
        strength=settings.channels.strength,
        provider=settings.channels.provider,
        idempotency_key=f"{row.idempotency_key}:{preset.name}",
    )


def outpaint(
    ledger: ImageLedger,
    chain: ProviderChain,
    row: ImageRecord,
    run_key: str,
    plan: Outpaint,
    settings: Settings,
    preset: ChannelPreset,
    semaphore: AbstractContextManager[object] | None = None,
) -> GenerationResult | None:
    """The outpainted canvas from the chain (``semaphore`` held around the call), gated and budgeted; its attempts
    and settlements recorded on ``row``. None (and why, logged) when the gate refuses it, no
    real provider made it or a budget cap stopped it."""
    assert row.id is not None
    log = get_logger()
    request = outpaint_request(row, plan, settings, preset)
    refusal = policy_refusal(row, settings.policy, request)
    if refusal:
        log.warning("%s: %s outpainting refused (%s): attention crop instead", image_line(row, "channels"), preset.name, refusal)
        return None
    guard = ClaimBudget(chain.budget, row.id, run_key) if chain.budget is not None else None
    with semaphore if semaphore is not None else nullcontext():
        outcome = scrub_outcome(call_chain(chain, request, guard), row)
    ledger.record_calls(row.id, run_key, outcome.attempts, outcome.settlements)
    if outcome.result is None or outcome.result.is_placeholder:
        why = outcome.error or "only the placeholder answered"
        log.warning("%s: %s outpainting not made (%s): attention crop instead", image_line(row, "channels"), preset.name, str(why)[:300])
        return None
    return outcome.result


def channel_renditions(
    ledger: ImageLedger, chain: ProviderChain, row: ImageRecord, run_key: str, settings: Settings, semaphore: AbstractContextManager[object] | None = None
) -> list[RenditionFile]:
    """The channel renditions of claimed image ``row`` (from its spooled original), written
    next to its other renditions and signed like them; [] when no presets are configured.
    Raises what rendering and signing raise (RenditionError, CredentialsError)."""
    presets = settings.channels.resolved()
    if not presets or row.is_placeholder or not row.spool_path:
        return []
    source = decode_image(Path(row.spool_path), config=settings.decode).image
    out_dir = Path(row.spool_path).with_suffix("")
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance = Provenance.of(row).published()
    files: list[RenditionFile] = []
    for preset in presets:
        plan = plan_channel(
            source, (preset.width, preset.height), share=settings.channels.subject_share, max_side=settings.channels.max_side, outpaint=preset.outpaint
        )
        picture, spec = (
            source,
            RenditionConfig(
                name=preset.name, width=preset.width, height=preset.height, fit="cover", crop="attention", format=preset.format, quality=preset.quality
            ),
        )
        stamp = provenance
        if plan.outpaint is not None:
            made = outpaint(ledger, chain, row, run_key, plan.outpaint, settings, preset, semaphore)
            if made is not None:
                with Image.open(io.BytesIO(made.image)) as opened:
                    picture = opened.convert("RGB")
                spec = spec.model_copy(update={"crop": "centre"})
                stamp = replace(provenance, provider=f"{provenance.provider} + outpainting by {made.provider}")
        files.append(render_one(picture, spec, out_dir, provenance=stamp))
    if settings.c2pa.enabled:
        key = get_secrets().c2pa_private_key
        files = sign_files(files, provenance, settings.c2pa, key.get_secret_value() if key is not None else None, settings.credentials_dir)
    return files
