"""Run artifacts: the markdown gallery of a run's images.

``gallery_markdown`` renders one row per image with its smallest rendition as a
thumbnail; ``publish_gallery`` publishes it as the ``<flow>-gallery`` Prefect artifact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storage.db import ImageRecord
from tasks.runtime import get_runtime

if TYPE_CHECKING:
    from tasks.pipeline import ImageSummary


def gallery_markdown(flow_name: str, images: list[ImageSummary]) -> str:
    """A markdown gallery: one row per image with its smallest rendition as thumbnail.

    Links come from the object store (``store.url(key)``): presigned HTTPS URLs for an
    S3 store, ``file://`` paths for a local folder (the path is printed too, since a
    browser may refuse to show ``file://`` images inside an ``http://`` page).
    """
    rt = get_runtime()
    lines = [f"# {flow_name}: {len(images)} images", "",
             "| thumbnail | image | slot | template | provider | status | file |",
             "|---|---|---|---|---|---|---|"]
    for image in images:
        thumb, original = "", ""
        if image.storage_key:
            renditions = _renditions_of(image.image_id)
            smallest = min(renditions, key=lambda r: r.width * r.height) if renditions else None
            if smallest is not None:
                thumb = f"![{image.image_id}]({rt.store.url(smallest.storage_key)})"
            original = f"[{image.storage_key}]({rt.store.url(image.storage_key)})"
        lines.append(f"| {thumb or '-'} | {image.image_id} | {image.slot} | {image.template or '-'} | "
                     f"{image.provider or '-'}{' (placeholder)' if image.placeholder else ''} | {image.status} | "
                     f"{original or (image.error or '-')[:120]} |")
    return "\n".join(lines)


def _renditions_of(image_id: str) -> list[Any]:
    from sqlmodel import select

    from storage.db import RenditionRecord

    rt = get_runtime()
    with rt.db.session() as session:
        row = session.exec(select(ImageRecord).where(ImageRecord.image_id == image_id)).first()
        if row is None:
            return []
        return list(session.exec(select(RenditionRecord).where(RenditionRecord.image_pk == row.id)).all())


def publish_gallery(flow_name: str, images: list[ImageSummary]) -> None:
    """Publish ``gallery_markdown`` as the ``<flow>-gallery`` markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=gallery_markdown(flow_name, images), key=f"{flow_name}-gallery",
                             description=f"{flow_name}: thumbnails of the {len(images)} images")
