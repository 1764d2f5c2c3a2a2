"""The ad-hoc flow: ``count`` images of one template, on demand (UI, API or CLI)."""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from domain.model import ImageFormat, Quality

from flows.hooks import flow_failure_hook
from flows.parameters import check_brand_images, check_references
from flows.run import current_trigger, image_run, produce_images, review_and_publish, summarise
from generation.plan import local_today, plan_adhoc
from reporting.summary import RunSummary
from tasks.plan import plan_images_task
from wiring.runtime import get_runtime


@flow(
    name="generate",
    task_runner=ThreadPoolTaskRunner(max_workers=16),  # type: ignore[arg-type]  # Prefect's generic default
    flow_run_name="generate-{template}",
    on_failure=[flow_failure_hook],
    on_crashed=[flow_failure_hook],
)
def generate(
    template: str,
    count: Annotated[int, Field(ge=1, le=50)] = 1,
    quality: Quality = Quality.standard,
    format: ImageFormat = ImageFormat.square,
    batch: Annotated[str, Field(max_length=80)] = "",
    retry_failed: bool = False,
    reference_image: str = "",
    mask: str = "",
    strength: Annotated[float, Field(ge=-1.0, le=1.0)] = -1.0,
    style_image: str = "",
    control_image: str = "",
) -> RunSummary:
    """``count`` images of ``template`` at ``quality`` and ``format``.

    ``batch`` names the request: the same batch re-run resumes instead of making new
    images (default: this flow run's id, so every trigger makes new images).

    Args:
        template: The prompt template, by name (a file templates/CATEGORY/NAME.yaml).
        count: How many images, 1 to 50.
        quality: standard (30 steps), hd (50) or ultra-hd (70).
        format: square 1024x1024, portrait 1024x1792 or landscape 1792x1024 pixels.
        batch: A name to resume this request later; empty for a new batch.
        retry_failed: Also retry images that failed for good (rejected, out of attempts).
        reference_image: img2img: a picture to start from, a path inside the templates
            folder or an https URL (overrides the template's).
        mask: inpainting: white where the picture is repainted (same rules; needs a reference image).
        strength: how much of the reference image changes, 0 to 1 (-1: the template's own).
        style_image: IP-Adapter: the brand's look from this picture (same rules), replacing
            the template's style image (the template's ``ip_adapter`` names the model).
        control_image: ControlNet: the composition from this picture (same rules), replacing
            the template's first unit's control image (its module and model stay).
    """
    rt = get_runtime()
    reference, inpaint, change = reference_image or None, mask or None, strength if strength >= 0 else None
    chosen = rt.library.get(template)  # the template asked for (TemplateError naming close names when unknown)
    check_references(reference, inpaint, change, rt.library.folder)
    check_brand_images(style_image or None, control_image or None, chosen, rt.library.folder)
    name = batch or str(flow_run.id or "manual")[:8]
    with image_run(rt) as run_key:  # what dead runs left is closed first
        slots = plan_adhoc(
            chosen.name,
            chosen.category,
            count,
            local_today(rt.settings.timezone),
            name,
            quality,
            format,
            reference_image=reference,
            mask=inpaint,
            strength=change,
            style_image=style_image or None,
            control_image=control_image or None,
        )
        pks = plan_images_task(rt, slots, current_trigger())  # a variation per slot, recorded before any money is spent
        produce_images(rt, "adhoc", pks, run_key, retry_failed)  # generate, post-process, tag, upload, record
        rows = review_and_publish(rt, pks, run_key, retry_failed)  # publish, or wait for a person's review
    return summarise(rt, "adhoc", rows)  # alerts, the summary artifacts, the run's verdict
