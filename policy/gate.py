"""The single call the generation gate makes: ``judge(parts, reference_image, policy)``.

Every text of a request is judged together (https://platform.openai.com/docs/guides/moderation
lists the categories the second layer uses):

* the final prompt, the style, the LoRA / embedding names and the pinned model name, as one
  text (a name is split into words: ``nsfw_nude_body_v2`` -> "nsfw nude body v2",
  ``ponyRealismXL`` -> "pony realism xl", so a name counts as the words it is made of);
* the negative prompt for what it implies, not for its words ("nsfw, nude" there is a
  safeguard): a negative prompt that excludes clothing ("clothes, clothing, dress,
  underwear") asks for nudity, one that excludes adults ("adult, mature") asks for a minor;
* a reference image (img2img): a sexual term in the instruction ("the same woman with her
  clothes removed") is intimate imagery of the real person in the photo, refused.

Layer 1 is the word lists (``policy.engine.evaluate``); layer 2, when ``policy.rules.moderation``
is enabled, OpenAI's moderation endpoint (``policy.moderation``), given the same positive
text and the reference image. The ``Decision`` records which layer refused, and a layer that
could not answer (refused when ``fail_closed``, else allowed with a note).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from policy.engine import evaluate
from policy.config import DEFAULT_RULES, ModerationConfig, PolicyRules
from policy.moderation import ModerationUnavailable, OpenAIModeration
from policy.normalise import fold, plain

LAYER_LEXICON = "lexicon"
LAYER_MODERATION = "moderation"
RULE_MODERATION = "moderation-flagged"
RULE_MODERATION_DOWN = "moderation-unavailable"

#: in a negative prompt, clothing words ask for nudity and adult words ask for a minor
_NEGATIVE_CLOTHING = re.compile(
    r" (?:clothes|clothing|clothed|dressed|dress|dresses|shirt|shirts|top|pants|trousers|skirt|underwear|bra|"
    r"panties|swimsuit|swimwear|bikini|outfit|garment|garments|fabric|covered|vetements|vetement|habillee?s?|"
    r"robe|jupe|culotte|maillot|ropa|vestida|kleidung|bekleidet|vestiti|vestita)(?= )"
)
_NEGATIVE_ADULT = re.compile(
    r" (?:adult|adults|mature|grown up|milf|old woman|older|adulte|adultes|mure|"
    r"erwachsene|erwachsen|adulta|adulto)(?= )"
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


class PolicySettings(Protocol):
    """What ``judge`` reads of the configuration (config.imaging.PolicyConfig has it)."""

    deny_terms: list[str]
    private_people: list[str]
    rules: PolicyRules


@dataclass(frozen=True)
class RequestParts:
    """The texts of one generation request."""

    prompt: str
    negative_prompt: str = ""
    style: str = ""
    #: LoRA and textual-inversion embedding names
    adapters: tuple[str, ...] = ()
    #: the pinned model (checkpoint) name
    model: str = ""


@dataclass(frozen=True)
class Decision:
    """``allowed``; else ``rule`` (a policy rule, ``moderation-flagged`` or ``moderation-unavailable``),
    ``layer`` (``lexicon`` or ``moderation``) and ``reason`` (fixed words, nothing of the prompt).
    ``notes``: what happened on the way ("moderation-unavailable: allowed (fail-open)");
    ``moderation_categories``: the OpenAI categories that refused."""

    allowed: bool
    rule: str | None = None
    layer: str | None = None
    reason: str = "allowed"
    notes: tuple[str, ...] = ()
    moderation_categories: tuple[str, ...] = field(default_factory=tuple)


def split_name(name: str) -> str:
    """A LoRA, embedding or model name as words: ``nsfw_nude_body_v2`` -> "nsfw nude body v2"."""
    stem = re.sub(r"\.(?:safetensors|ckpt|pt|bin|pth)$", "", name.strip(), flags=re.IGNORECASE)
    return re.sub(r"[_\-.:/<>]+", " ", _CAMEL.sub(" ", stem)).strip()


def negative_implies(negative: str) -> str:
    """What a negative prompt asks for by excluding it: "nude" for clothing, "child" for adults."""
    text = plain(fold(negative))
    implied = []
    if _NEGATIVE_CLOTHING.search(text):
        implied.append("nude")
    if _NEGATIVE_ADULT.search(text):
        implied.append("child")
    return ", ".join(implied)


def positive_text(parts: RequestParts) -> str:
    """The prompt, the style and the adapter and model names, one text (what layer 2 is given)."""
    names = [split_name(n) for n in (*parts.adapters, parts.model) if n and n.strip()]
    return "\n".join(t for t in (parts.prompt, parts.style, *names) if t and t.strip())


def _lexicon(parts: RequestParts, reference_image: bool, policy: PolicySettings) -> Decision | None:
    text = positive_text(parts)
    implied = negative_implies(parts.negative_prompt)
    verdict = evaluate(
        f"{text}\n{implied}" if implied else text,
        deny_terms=policy.deny_terms,
        private_people=policy.private_people,
        rules=policy.rules,
        reference_image=reference_image,
    )
    if verdict.allowed:
        return None
    return Decision(False, verdict.rule, LAYER_LEXICON, verdict.reason)


def moderator_for(config: ModerationConfig, env: Mapping[str, str] | None = None) -> OpenAIModeration:
    """The layer-2 client the configuration describes (the key from ``config.api_key_env``)."""
    key = (env if env is not None else os.environ).get(config.api_key_env, "")
    return OpenAIModeration(
        key, base_url=config.base_url, model=config.model, timeout_s=config.timeout_s, categories=config.categories, threshold=config.threshold
    )


def _moderation(parts: RequestParts, image: bytes | None, config: ModerationConfig, moderator: OpenAIModeration) -> Decision:
    try:
        result = moderator.check(positive_text(parts), image)
    except ModerationUnavailable as exc:
        if config.fail_closed:
            return Decision(False, RULE_MODERATION_DOWN, LAYER_MODERATION, f"moderation layer unavailable, refused (fail-closed): {exc}")
        return Decision(True, notes=(f"{RULE_MODERATION_DOWN}: allowed (fail-open): {exc}",))
    if result.flagged:
        return Decision(
            False,
            RULE_MODERATION,
            LAYER_MODERATION,
            "flagged by the moderation layer: " + ", ".join(result.categories),
            moderation_categories=result.categories,
        )
    return Decision(True, notes=("moderation: not flagged",))


def judge(
    parts: RequestParts,
    reference_image: bytes | None,
    policy: PolicySettings,
    *,
    moderator: OpenAIModeration | None = None,
    env: Mapping[str, str] | None = None,
) -> Decision:
    """The policy's decision on one request: layer 1 (word lists) always, layer 2 (OpenAI moderation)
    when ``policy.rules.moderation.enabled``. ``moderator`` replaces the configured client (tests)."""
    rules = getattr(policy, "rules", None) or DEFAULT_RULES
    refused = _lexicon(parts, reference_image is not None, policy)
    if refused:
        return refused
    if not rules.moderation.enabled:
        return Decision(True)
    return _moderation(parts, reference_image, rules.moderation, moderator or moderator_for(rules.moderation, env))
