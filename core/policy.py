"""The content policy applied to every prompt before any provider is called.

Fixed refusals, whatever a template or configuration says:

* sexualised minors: a term for a child or teenager together with a sexual or
  nudity term anywhere in the prompt;
* real private people: a prompt that names someone from ``policy.private_people``, or
  that asks for a recognisable real private person ("my neighbour", "photo of my
  coworker", "real person named ..."). Public figures are outside this rule; the
  shipped templates depict no people at all.

Configurable: ``policy.deny_terms`` (whole-word, case-insensitive).
Raises ``ContentPolicyError`` with the rule and the matched words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.errors import ContentPolicyError

_MINOR = (
    r"child|children|kid|kids|minor|minors|underage|under-age|teen|teens|teenager|teenagers|preteen|"
    r"pre-teen|schoolgirl|schoolboy|boy|girl|toddler|infant|baby|loli|lolita|shota|young\s+(?:girl|boy)|"
    r"\d{1,2}\s*(?:yo|y/o|year[- ]old)"
)
_SEXUAL = r"nude|nudity|naked|sexual|sexualised|sexualized|sexy|erotic|porn|pornographic|nsfw|lingerie|topless|explicit|seductive|provocative|undressed|fetish"
_PRIVATE = (
    r"(?:my|our|his|her|their)\s+(?:neighbou?r|coworker|co-worker|colleague|classmate|ex|ex-wife|ex-husband|"
    r"girlfriend|boyfriend|boss|teacher|landlord|roommate)|real\s+(?:private\s+)?person\s+named|"
    r"photo\s+of\s+(?:a\s+)?private\s+(?:person|individual)"
)

_MINOR_RE = re.compile(rf"\b(?:{_MINOR})\b", re.IGNORECASE)
_SEXUAL_RE = re.compile(rf"\b(?:{_SEXUAL})\b", re.IGNORECASE)
_PRIVATE_RE = re.compile(rf"\b(?:{_PRIVATE})\b", re.IGNORECASE)


def check_prompt(prompt: str, *, deny_terms: Iterable[str] = (), private_people: Iterable[str] = ()) -> None:
    """Refuse ``prompt`` (the full text sent to the provider) or return None.

    Raises ContentPolicyError("rule: matched words").
    """
    minor = _MINOR_RE.search(prompt)
    sexual = _SEXUAL_RE.search(prompt)
    if minor and sexual:
        raise ContentPolicyError(f"sexualised minors: {minor.group(0)!r} with {sexual.group(0)!r}")
    private = _PRIVATE_RE.search(prompt)
    if private:
        raise ContentPolicyError(f"real private person: {private.group(0)!r}")
    for name in private_people:
        if name.strip() and re.search(rf"\b{re.escape(name.strip())}\b", prompt, re.IGNORECASE):
            raise ContentPolicyError(f"real private person: {name.strip()!r} is on the private-people list")
    for term in deny_terms:
        if term.strip() and re.search(rf"\b{re.escape(term.strip())}\b", prompt, re.IGNORECASE):
            raise ContentPolicyError(f"denied term: {term.strip()!r}")
