"""The studio's settings of the content policy: ``policy.rules`` in the configuration.

The fixed rules (``child-sexual-abuse``, ``sexualised-minors``, ``child-violence``,
``intimate-real-person``, ``real-private-person``) cannot be switched off; a studio may
only make them stricter (``minor_terms``, ``sexual_terms``, ``known_people``). The
configurable categories (``graphic-gore``, ``hate-symbols``, ``self-harm``) are on by
default; each can be switched off, given more terms, and given allow-listed phrases
(a phrase on the allow-list is taken out of the text before that category is matched).
``moderation`` is the optional second layer, OpenAI's moderation endpoint
(https://platform.openai.com/docs/api-reference/moderations/create, categories in
https://platform.openai.com/docs/guides/moderation).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)
Term = Annotated[str, Field(min_length=1, max_length=200)]


class CategoryRule(BaseModel):
    """One configurable category: on or off, added terms, allow-listed phrases."""

    model_config = _Strict
    enabled: bool = True
    terms: list[Term] = Field(default_factory=list)
    allow: list[Term] = Field(default_factory=list)


class ModerationConfig(BaseModel):
    """OpenAI's moderation endpoint as a second layer (off by default: it sends the prompt
    and the reference image to OpenAI). ``fail_closed``: refuse when it cannot answer (on by
    default); else allow and record that it did not answer. ``categories``: the OpenAI
    categories that refuse (empty: every flagged one); ``threshold``: refuse when a score
    reaches it even where OpenAI did not flag (None: OpenAI's own ``flagged``)."""

    model_config = _Strict
    enabled: bool = False
    base_url: Annotated[str, Field(min_length=1, max_length=500)] = "https://api.openai.com/v1"
    model: Annotated[str, Field(min_length=1, max_length=100)] = "omni-moderation-latest"
    #: the environment variable holding the API key (never the key itself in the file)
    api_key_env: Annotated[str, Field(min_length=1, max_length=100)] = "OPENAI_API_KEY"
    fail_closed: bool = True
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    categories: list[Annotated[str, Field(max_length=60)]] = Field(default_factory=list)
    threshold: Annotated[float, Field(gt=0, le=1)] | None = None


class PolicyRules(BaseModel):
    """The categories and layers of ``policy`` a studio configures (``policy.rules``)."""

    model_config = _Strict
    graphic_gore: CategoryRule = Field(default_factory=CategoryRule)
    hate_symbols: CategoryRule = Field(default_factory=CategoryRule)
    self_harm: CategoryRule = Field(default_factory=CategoryRule)
    #: more words that name a minor / that are sexual (the fixed rules only get stricter)
    minor_terms: list[Term] = Field(default_factory=list)
    sexual_terms: list[Term] = Field(default_factory=list)
    #: real people (public or private) whose name with a sexual term is refused, beyond the name-shape check
    known_people: list[Term] = Field(default_factory=list)
    moderation: ModerationConfig = Field(default_factory=ModerationConfig)


DEFAULT_RULES = PolicyRules()
