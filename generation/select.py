"""Stage 1: choose the template of a slot.

Every image of one slot uses one template. The choice rotates by date through the
category's templates, leaving out those used in the category the day before (any
flow), so a template is not reused on consecutive days when the category has two or
more. The choice is stored on the image row when it is planned, so a re-run of the
same date keeps it.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from domain.model import ImageSlot, Template
from domain.templates import TemplateLibrary
from storage.db import Database


def select_template(
    library: TemplateLibrary, slot: ImageSlot, db: Database | None = None, *, recent: dict[date, set[tuple[str, str]]] | None = None
) -> Template:
    """The template for ``slot``: its fixed template (ad-hoc) or the rotation's pick.

    ``recent``: a cache of each day's (category, template) pairs shared by the slots of one
    plan, so the rotation reads the previous day's images once, not once per slot.
    Raises TemplateError when the category has no template or the fixed one is unknown.
    """
    if slot.template:
        return library.get(slot.template)
    templates = library.by_category(slot.category)
    candidates = templates
    if db is not None and len(templates) > 1:
        yesterday = slot.run_date - timedelta(days=1)
        if recent is None or yesterday not in recent:
            pairs = {(row.category, row.template or "") for row in db.images(run_date=yesterday)}
            if recent is None:
                recent = {}
            recent[yesterday] = pairs
        used = {template for category, template in recent[yesterday] if category == slot.category}
        candidates = [t for t in templates if t.name not in used] or templates
    offset = int.from_bytes(hashlib.sha256(slot.slot.encode()).digest()[:2], "big")
    return candidates[(slot.run_date.toordinal() + offset) % len(candidates)]
