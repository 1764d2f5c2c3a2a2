"""Stage 5: categorize and tag an image.

Category comes from the template. Tags: the category, the slot's extra tags and the
template's tags (stored on the row when it was planned), keywords from the prompt
(words of 4+ letters that are not stop words or photo jargon, first 8), and
``placeholder`` for a placeholder image.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_STOP = set(
    """
    with from that this into onto over under above below their there about after before
    while where which very more most some such than then them they have been being were
    also just like only other your ours its high detail details detailed photo photograph
    photography shot image picture style light lighting soft natural golden hour studio
    composition minimalist shallow depth field wide angle close macro crisp clean bright
    warm cool sharp focus background backdrop quality
    """.split()
)
_WORD = re.compile(r"[a-z][a-z-]{3,}")


def prompt_keywords(prompt: str, limit: int = 8) -> list[str]:
    """Distinct content words of ``prompt``, in order of appearance."""
    seen: list[str] = []
    for word in _WORD.findall(prompt.lower()):
        word = word.strip("-")
        if len(word) >= 4 and word not in _STOP and word not in seen:
            seen.append(word)
        if len(seen) >= limit:
            break
    return seen


def categorize(category: str, prompt: str, tags: Iterable[str], *, is_placeholder: bool = False) -> list[str]:
    """The image's tag list: category first, then the given tags, then prompt keywords."""
    result: list[str] = []
    for tag in [category, *tags, *prompt_keywords(prompt), *(["placeholder"] if is_placeholder else [])]:
        tag = tag.strip().lower()
        if tag and tag not in result:
            result.append(tag)
    return result
