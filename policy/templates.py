"""The content policy over the template library: every template, variant and wildcard
expansion judged as ``templates validate`` reports it."""

from __future__ import annotations

from domain.model import expansions
from domain.templates import TemplateLibrary
from domain.yamlio import shorten
from policy import evaluate


#: at most this many expanded prompts of one template variant are checked one by one (~2 ms each)
MAX_POLICY_CHECKS = 1000


def policy_problems(library: TemplateLibrary, *, styles: list[str] | tuple[str, ...] = (),
                    deny_terms: list[str] | tuple[str, ...] = (),
                    private_people: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Every template, variant and wildcard expansion (with each style it may get) that
    the content policy (policy) refuses, one line each: file, variant, rule and the
    refused prompt shortened. At most ``MAX_EXPANSIONS`` expansions per prompt are
    enumerated, and at most ``MAX_POLICY_CHECKS`` prompts (expansions x styles) are
    checked one by one; beyond that every choice and style is checked together (a
    refusal then says "may expand to")."""
    problems: list[str] = []
    for group in library.templates.values():
        for template in group:
            path = library.files.get(template.name, template.name)
            pool = list(template.styles) or list(styles) or [""]
            for variant, text in template.prompts().items():
                texts, complete = expansions(text)
                suffixes = pool
                if not complete or len(texts) * len(pool) > MAX_POLICY_CHECKS:
                    # too many combinations (~2 ms each): every choice and every style at once, a
                    # superset of the words of any one expansion
                    complete = False
                    texts = [text.replace("{", " ").replace("|", " , ").replace("}", " ") + ", " + ", ".join(pool)]
                    suffixes = [""]
                refused = None
                for expanded in texts:
                    for style in suffixes:
                        prompt = f"{expanded}, {style}" if style else expanded
                        verdict = evaluate(f"{prompt}\n{template.name}", deny_terms=deny_terms,
                                           private_people=private_people)
                        if not verdict.allowed:
                            refused = (prompt, verdict)
                            break
                    if refused:
                        break
                if refused:
                    prompt, verdict = refused
                    what = "expands to" if complete else "may expand to"
                    problems.append(f"{path}: {'prompt' if variant == 'base' else 'variants.' + variant} {what} "
                                    f"{shorten(prompt)}, refused by the content policy ({verdict.reason})")
    return problems
