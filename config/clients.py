"""Configuration of clients (brands an agency works for): the ``clients`` key of
config/settings.py ``Settings``.

A client owns categories and templates: ``clients.<name>.categories`` and
``clients.<name>.templates``; a template listed under a client belongs to it even when its
category belongs to another (the template's own client overrides its category's); an image
of a category and template no client lists belongs to no client (the global budget,
alert targets, reviewers and webhooks only). Per client:

- ``budget``: ``daily_usd`` / ``monthly_usd`` caps in USD, checked in the same reservation
  transaction as the global and provider caps (generation/budget.py): a client's cap reached
  skips only that client's slots;
- ``alerts_env``: the name of an environment variable holding the client's Apprise URLs
  (URLs carry tokens: secrets are never in the file); the client's alerts go there IN
  ADDITION to the global ``APPRISE_URLS``;
- ``reviewers``: the only people who may decide the review of the client's images (empty:
  anyone, as without clients);
- ``webhooks``: the delivery webhooks of the client's published images, INSTEAD of the global
  ``delivery.webhooks`` (a brand's images never reach another brand's CMS); none: the global ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from config.publishing import WebhookConfig

_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf / nan are never a valid setting
_Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=30)]
_Listed = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)]

#: The budget scope of a client's caps in ``budget_periods`` (``client:acme``): never a provider's name.
CLIENT_SCOPE_PREFIX = "client:"


def client_scope(client: str) -> str:
    """``client:<name>``: the budget scope of ``client``'s caps."""
    return CLIENT_SCOPE_PREFIX + client


class ClientBudgetConfig(BaseModel):
    """A client's caps in USD (None: only the global and provider caps apply to it)."""

    model_config = _Strict
    daily_usd: Annotated[float, Field(ge=0)] | None = None
    monthly_usd: Annotated[float, Field(ge=0)] | None = None


class ClientConfig(BaseModel):
    """One client: what it owns and its budget, alert targets, reviewers and webhooks."""

    model_config = _Strict
    categories: list[_Listed] = Field(default_factory=list)
    templates: list[_Listed] = Field(default_factory=list)
    budget: ClientBudgetConfig = Field(default_factory=ClientBudgetConfig)
    alerts_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=100)] | None = None
    reviewers: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)

    def apprise_urls(self, environ: Mapping[str, str | None] | None = None) -> list[str]:
        """The client's Apprise URLs: the value of ``alerts_env`` in ``environ`` (default: the
        environment), split on whitespace or commas; [] when unset. Never log them (tokens)."""
        if not self.alerts_env:
            return []
        value = (os.environ if environ is None else environ).get(self.alerts_env) or ""
        return [u for u in re.split(r"[\s,]+", value) if u]

    def may_review(self, reviewer: str) -> bool:
        """True when ``reviewer`` may decide this client's images (no list: anyone)."""
        return not self.reviewers or reviewer.strip() in self.reviewers


class ClientsConfig(RootModel[dict[_Name, ClientConfig]]):
    """``{name: ClientConfig}``; a category or a template listed under two clients is refused."""

    root: dict[_Name, ClientConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_owner(self) -> ClientsConfig:
        for kind, word in (("categories", "category"), ("templates", "template")):
            owner: dict[str, str] = {}
            for name, client in self.root.items():
                for item in getattr(client, kind):
                    if item in owner and owner[item] != name:
                        raise ValueError(f"{word} {item!r} belongs to two clients: {owner[item]!r} and {name!r}")
                    owner[item] = name
        return self

    def get(self, name: str | None) -> ClientConfig | None:
        """Client ``name``'s configuration; None for no client or an unknown one."""
        return self.root.get(name) if name else None

    def client_of(self, category: str, template: str | None = None) -> str | None:
        """The client owning ``template`` (listed under ``templates``), else ``category``; None: no client."""
        if template:
            for name, client in self.root.items():
                if template in client.templates:
                    return name
        for name, client in self.root.items():
            if category in client.categories:
                return name
        return None

    def names(self) -> list[str]:
        """The configured clients, sorted."""
        return sorted(self.root)
