"""The content policy over the template library: every template, variant and wildcard
expansion judged as ``templates validate`` reports it, by the same gate as generation
(``policy.gate.judge``: prompt + style, negative prompt, LoRA names, pinned model, reference image)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from domain.model import Template, expansions
from domain.templates import TemplateLibrary
from domain.yamlio import shorten
from policy.config import DEFAULT_RULES, PolicyRules
from policy.gate import Decision, PolicySettings, RequestParts, judge


#: at most this many expanded prompts of one template variant are checked one by one (~2 ms each)
MAX_POLICY_CHECKS = 1000


@dataclass
class _Terms:
    """PolicySettings from the plain keyword arguments."""

    deny_terms: list[str] = field(default_factory=list)
    private_people: list[str] = field(default_factory=list)
    rules: PolicyRules = field(default_factory=lambda: DEFAULT_RULES)


def _texts(text: str, pool: list[str]) -> tuple[list[str], list[str], bool]:
    texts, complete = expansions(text)
    if not complete or len(texts) * len(pool) > MAX_POLICY_CHECKS:
        # too many combinations (~2 ms each): every choice and every style at once, a
        # superset of the words of any one expansion
        return [text.replace("{", " ").replace("|", " , ").replace("}", " ") + ", " + ", ".join(pool)], [""], False
    return texts, pool, complete


def _first_refusal(template: Template, text: str, pool: list[str], image: bytes | None, policy: PolicySettings) -> tuple[str, Decision, bool] | None:
    texts, suffixes, complete = _texts(text, pool)
    adapters = (*template.loras, template.name)
    for expanded in texts:
        for style in suffixes:
            prompt = f"{expanded}, {style}" if style else expanded
            decision = judge(RequestParts(prompt, template.negative_prompt, adapters=adapters, model=template.model or ""), image, policy)
            if not decision.allowed:
                return prompt, decision, complete
    return None


def policy_problems(
    library: TemplateLibrary,
    *,
    styles: list[str] | tuple[str, ...] = (),
    deny_terms: list[str] | tuple[str, ...] = (),
    private_people: list[str] | tuple[str, ...] = (),
    policy: PolicySettings | None = None,
    load_reference: Callable[[str], bytes] | None = None,
) -> list[str]:
    """Every template, variant and wildcard expansion (with each style it may get) that
    the content policy refuses (``policy.gate.judge``, with the template's negative prompt,
    LoRA names, pinned model and reference image: the bytes ``load_reference(value)`` gives,
    else empty bytes), one line each: file, variant, rule and the refused prompt shortened
    (not quoted for a template with ``embed_prompt: false``).
    ``policy`` (config.imaging.PolicyConfig) replaces ``deny_terms`` / ``private_people``.
    At most ``MAX_EXPANSIONS`` expansions per prompt are enumerated, and at most
    ``MAX_POLICY_CHECKS`` prompts (expansions x styles) are checked one by one; beyond that
    every choice and style is checked together (a refusal then says "may expand to")."""
    settings = policy or _Terms(list(deny_terms), list(private_people))
    problems: list[str] = []
    for group in library.templates.values():
        for template in group:
            path = library.files.get(template.name, template.name)
            pool = list(template.styles) or list(styles) or [""]
            image = None
            if template.reference_image:
                image = load_reference(template.reference_image) if load_reference else b""
            for variant, text in template.prompts().items():
                refused = _first_refusal(template, text, pool, image, settings)
                if refused:
                    prompt, decision, complete = refused
                    what = "expands to" if complete else "may expand to"
                    # a private prompt (embed_prompt: false) is never quoted: these lines reach logs
                    shown = "a private prompt" if template.embed_prompt is False else shorten(prompt)
                    problems.append(
                        f"{path}: {'prompt' if variant == 'base' else 'variants.' + variant} {what} {shown}, refused by the content policy ({decision.reason})"
                    )
    return problems
