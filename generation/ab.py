"""A/B testing of template variants: outcomes per variant and Thompson sampling.

Outcomes are the image rows themselves (storage.db.ImageRecord: ``template``,
``variant``, ``status``, ``quality_score``, ``duplicate_of``), recorded as each image
ends. A finished real image (status ``done``, not a placeholder) is a success whose
reward is its quality score (0..1; 1.0 when unscored); a ``failed`` or ``blocked``
image, or a near-duplicate skipped before upload, is a failure (reward 0). Budget
skips and placeholders say nothing about a prompt and are left out.

Each variant has a Beta(alpha, beta) posterior: the prior plus ``reward`` added to
alpha and ``1 - reward`` to beta per outcome (Bernoulli Thompson sampling extended to
rewards in [0, 1]: Agrawal & Goyal, "Analysis of Thompson Sampling for the
Multi-armed Bandit Problem", COLT 2012, §2). Selection draws one sample per variant
and takes the largest: better variants are chosen more often while every variant
keeps a chance. The draws come from a generator seeded by the slot's idempotency key,
so the same slot with the same history picks the same variant, and a planned row
keeps its variant on resume.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import select

from domain.model import ImageStatus, seed_from_key
from config.generation import ABConfig
from storage.db import Database, ImageRecord

FAILURES = (ImageStatus.failed.value, ImageStatus.blocked.value)


@dataclass
class VariantStats:
    """Outcomes of one variant of one template; ``alpha``/``beta`` include the prior."""

    template: str
    variant: str
    trials: int = 0
    successes: int = 0
    quality_sum: float = 0.0
    alpha: float = 1.0
    beta: float = 1.0

    @property
    def success_rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0

    @property
    def mean_quality(self) -> float | None:
        return self.quality_sum / self.successes if self.successes else None

    @property
    def posterior_mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


def reward_of(row: ImageRecord) -> float | None:
    """The outcome of ``row`` in 0..1, or None when it is not (yet) an outcome."""
    if row.is_placeholder or not row.variant:
        return None
    if row.status == ImageStatus.done.value:
        return 1.0 if row.quality_score is None else max(0.0, min(1.0, row.quality_score))
    if row.status in FAILURES or (row.status == ImageStatus.skipped.value and row.duplicate_of):
        return 0.0
    return None


def variant_stats(
    db: Database, template: str | None = None, *, config: ABConfig | None = None, variants: Mapping[str, Sequence[str]] | None = None
) -> dict[tuple[str, str], VariantStats]:
    """Stats by ``(template, variant)`` from the recorded images (of ``template`` or all).

    ``variants``: template name -> its variant names, so variants without outcomes appear too.
    """
    config = config or ABConfig()
    stats: dict[tuple[str, str], VariantStats] = {}

    def entry(t: str, v: str) -> VariantStats:
        return stats.setdefault((t, v), VariantStats(t, v, alpha=config.prior_alpha, beta=config.prior_beta))

    for name, names in (variants or {}).items():
        for v in names:
            entry(name, v)
    with db.session() as session:
        query = select(ImageRecord).where(ImageRecord.variant.is_not(None))  # type: ignore[union-attr]
        if template:
            query = query.where(ImageRecord.template == template)
        rows = list(session.exec(query))
    for row in rows:
        reward = reward_of(row)
        if reward is None or not row.template or not row.variant:
            continue
        item = entry(row.template, row.variant)
        item.trials += 1
        item.alpha += reward
        item.beta += 1.0 - reward
        if row.status == ImageStatus.done.value:
            item.successes += 1
            item.quality_sum += reward
    return stats


def thompson_choice(variants: Sequence[str], stats: dict[str, VariantStats], rng: random.Random, prior: tuple[float, float] = (1.0, 1.0)) -> str:
    """The variant whose Beta posterior sample is largest (ties: first in ``variants``)."""
    best, best_draw = variants[0], -1.0
    for name in variants:
        item = stats.get(name)
        alpha, beta = (item.alpha, item.beta) if item else prior
        draw = rng.betavariate(alpha, beta)
        if draw > best_draw:
            best, best_draw = name, draw
    return best


def make_chooser(db: Database, template: str, config: ABConfig) -> Callable[[Sequence[str], str], str] | None:
    """A ``(variants, idempotency_key) -> variant`` chooser for ``create_variation``, or
    None for ``strategy: uniform`` (the variation's own uniform draw)."""
    if config.strategy != "thompson":
        return None
    by_variant = {v: s for (t, v), s in variant_stats(db, template, config=config).items() if t == template}

    def choose(variants: Sequence[str], key: str) -> str:
        rng = random.Random(seed_from_key(key, "ab-thompson"))
        return thompson_choice(variants, by_variant, rng, (config.prior_alpha, config.prior_beta))

    return choose


def probability_best(stats: Sequence[VariantStats], draws: int = 4000, seed: int = 0) -> dict[str, float]:
    """P(variant has the highest posterior mean), estimated from ``draws`` joint samples."""
    if not stats:
        return {}
    rng = random.Random(seed)
    wins = {s.variant: 0 for s in stats}
    for _ in range(draws):
        samples = [(rng.betavariate(s.alpha, s.beta), s.variant) for s in stats]
        wins[max(samples)[1]] += 1
    return {name: count / draws for name, count in wins.items()}


@dataclass(frozen=True)
class ReportRow:
    template: str
    variant: str
    trials: int
    successes: int
    success_rate: float
    mean_quality: float | None
    alpha: float
    beta: float
    posterior_mean: float
    p_best: float


def report(
    db: Database, *, template: str | None = None, config: ABConfig | None = None, variants: Mapping[str, Sequence[str]] | None = None
) -> list[ReportRow]:
    """One row per (template, variant), sorted by template then posterior mean (best first)."""
    stats = variant_stats(db, template, config=config, variants=variants)
    by_template: dict[str, list[VariantStats]] = {}
    for item in stats.values():
        by_template.setdefault(item.template, []).append(item)
    rows: list[ReportRow] = []
    for name in sorted(by_template):
        items = sorted(by_template[name], key=lambda s: (-s.posterior_mean, s.variant))
        p_best = probability_best(items)
        for s in items:
            rows.append(
                ReportRow(
                    name,
                    s.variant,
                    s.trials,
                    s.successes,
                    round(s.success_rate, 4),
                    None if s.mean_quality is None else round(s.mean_quality, 4),
                    round(s.alpha, 3),
                    round(s.beta, 3),
                    round(s.posterior_mean, 4),
                    round(p_best[s.variant], 4),
                )
            )
    return rows
