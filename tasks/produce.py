"""Step 3 of a run: produce each image (generate -> post-process -> categorize and tag ->
upload -> record), one task run per image, and the batched generation before it."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from generation.batching import generate_batches
from generation.produce import produce_image
from reporting.summary import ImageSummary
from wiring.runtime import Runtime


@task(name="generate-batches", cache_policy=NO_CACHE)
def generate_batches_task(rt: Runtime, pks: list[int], run_key: str, retry_failed: bool = False) -> list[int]:
    """Render each template's variations in one call where a provider of the chain batches
    (generation.batching); returns the primary keys it generated."""
    return generate_batches(rt.worker(run_key, retry_failed=retry_failed), pks)


@task(name="produce-image", cache_policy=NO_CACHE, task_run_name="image-{pk}")
def produce_image_task(rt: Runtime, pk: int, run_key: str, retry_failed: bool = False) -> ImageSummary:
    """The whole process of one image (generation.produce.produce_image): one task run per image."""
    return ImageSummary.of(produce_image(rt.worker(run_key, retry_failed=retry_failed), pk))
