"""Stage 2: turn a template into one concrete request for one image slot.

Wildcards ``{a|b|c}`` are resolved, a style modifier is appended, an A/B variant is
chosen and the seed is set, all from random generators seeded by the slot's
idempotency key: the same slot always gives the same request, so a re-run or a
resumed run asks for exactly the same image.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.model import WILDCARD, GenerationRequest, ImageSlot, Template, seed_from_key
from domain.templates import resolve_reference


@dataclass(frozen=True)
class Variation:
    """The request for one slot and the A/B variant it came from (``base`` = the main prompt)."""

    request: GenerationRequest
    variant: str
    style: str | None


def expand_wildcards(text: str, rng: random.Random) -> str:
    """Replace each ``{a|b|c}`` group by one of its choices (stripped)."""
    return WILDCARD.sub(lambda m: rng.choice([c.strip() for c in m.group(1).split("|")]), text)


def create_variation(template: Template, slot: ImageSlot, styles: Sequence[str] = (), choose: Callable[[Sequence[str], str], str] | None = None) -> Variation:
    """The GenerationRequest for ``slot`` from ``template`` (sizes from its parameters,
    the slot's quality and format overriding them).

    ``choose(variants, idempotency_key)`` picks the A/B variant (generation.ab Thompson
    sampling); without it the variant is drawn uniformly."""
    key = slot.idempotency_key
    rng = random.Random(seed_from_key(key, "variation"))
    variants = ["base", *sorted(template.variants)]
    variant = variants[rng.randrange(len(variants))]
    if choose is not None and len(variants) > 1:
        variant = choose(variants, key)
    prompt = template.prompt if variant == "base" else template.variants[variant]
    prompt = expand_wildcards(prompt, rng)
    pool = list(template.styles) or list(styles)
    style = rng.choice(pool) if pool else None
    if style:
        prompt = f"{prompt}, {style}"
    params = template.parameters.resolved(slot.quality, slot.format)
    request = GenerationRequest(
        prompt=prompt,
        negative_prompt=template.negative_prompt,
        width=params["width"],
        height=params["height"],
        num_inference_steps=params["num_inference_steps"],
        guidance_scale=params["guidance_scale"],
        seed=template.seed if template.seed is not None else seed_from_key(key),
        idempotency_key=key,
    )
    return Variation(request=request, variant=variant, style=style)


def request_options(template: Template, slot: ImageSlot, folder: Path) -> dict[str, Any] | None:
    """The pins and img2img inputs stored with a planned row (None when there are none):
    ``provider``, ``model``, ``loras`` ([[name, weight]]), ``reference_image`` / ``mask``
    (absolute paths inside ``folder`` or https URLs; the slot's override the template's),
    ``strength`` (0..1), ``controlnet`` (the units, their images resolved the same way) and
    ``hires_fix`` and ``ip_adapter`` (the style reference, its image resolved the same way; the
    slot's ``style_image`` / ``control_image`` replace the template's style image and first
    control image). TemplateError when a reference or control image file is missing."""
    options: dict[str, Any] = {}
    if template.provider:
        options["provider"] = template.provider
    if template.model:
        options["model"] = template.model
    if template.loras:
        options["loras"] = [[name, weight] for name, weight in template.loras.items()]
    own = slot.reference_image is not None
    reference = slot.reference_image if own else template.reference_image
    mask = slot.mask if own or slot.mask else template.mask
    strength = slot.strength if slot.strength is not None else template.strength
    if reference:
        options["reference_image"] = resolve_reference(reference, folder)
        if mask:
            options["mask"] = resolve_reference(mask, folder)
        if strength is not None:
            options["strength"] = strength
    if template.controlnet:
        images = [slot.control_image or template.controlnet[0].image] + [unit.image for unit in template.controlnet[1:]]
        options["controlnet"] = [
            {**unit.model_dump(), "image": resolve_reference(image, folder)} for unit, image in zip(template.controlnet, images, strict=True)
        ]
    if template.hires_fix:
        options["hires_fix"] = template.hires_fix.model_dump()
    if template.ip_adapter:
        options["ip_adapter"] = {**template.ip_adapter.model_dump(), "image": resolve_reference(slot.style_image or template.ip_adapter.image, folder)}
    return options or None
