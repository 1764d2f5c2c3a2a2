"""A/B testing of template variants: outcomes per variant, Thompson sampling, the report."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date

from typer.testing import CliRunner

from cli.main import app
from domain.model import ImageSlot, ImageStatus
from config.generation import ABConfig
from generation.ab import VariantStats, make_chooser, report, thompson_choice, variant_stats
from generation.record import record_planned
from wiring.runtime import get_runtime
from generation.variations import create_variation
from tests.rows import plan_row, set_row

TEMPLATE = "pasta-dish"  # ships with variants


def seed_outcomes(db, variant: str, outcomes: list[tuple[str, float | None]], start: int) -> None:  # type: ignore[no-untyped-def]
    """Rows of ``variant`` ending in each (status, quality score)."""
    for i, (status, quality) in enumerate(outcomes):
        slot = ImageSlot("history", date(2026, 10, 1), "s", start + i, "food")
        row = plan_row(db, slot, template=TEMPLATE, variant=variant, prompt="pasta")
        set_row(db, row.id, ImageStatus(status), quality_score=quality, provider="automatic1111")


def test_thompson_prefers_the_better_variant_and_still_explores() -> None:
    good = {"a": VariantStats("t", "a", alpha=1 + 18 * 0.8, beta=1 + 2 + 18 * 0.2)}
    bad = {"b": VariantStats("t", "b", alpha=1 + 5 * 0.4, beta=1 + 15 + 5 * 0.6)}
    picks = Counter(thompson_choice(["a", "b"], {**good, **bad}, random.Random(i)) for i in range(400))
    assert picks["a"] > 0.9 * 400
    # little evidence: both are still tried
    close = {"a": VariantStats("t", "a", alpha=2.5, beta=1.5), "b": VariantStats("t", "b", alpha=1.8, beta=2.2)}
    picks = Counter(thompson_choice(["a", "b", "c"], close, random.Random(i)) for i in range(400))
    assert all(picks[v] > 40 for v in ("a", "b", "c")), picks


def test_outcomes_recorded_per_variant_drive_selection(make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    rt = get_runtime()
    template = rt.library.get(TEMPLATE)
    variants = ["base", *sorted(template.variants)]
    assert len(variants) >= 2
    winner, loser = variants[1], variants[0]
    seed_outcomes(rt.db, winner, [("done", 0.8)] * 12 + [("failed", None)], 0)
    seed_outcomes(rt.db, loser, [("done", 0.3)] * 3 + [("failed", None)] * 6 + [("blocked", None)], 100)
    seed_outcomes(rt.db, loser, [("skipped", None)] * 5, 200)  # budget skips say nothing about a prompt
    stats = variant_stats(rt.db, TEMPLATE)
    w, lo = stats[(TEMPLATE, winner)], stats[(TEMPLATE, loser)]
    assert (w.trials, w.successes, round(w.mean_quality or 0, 3)) == (13, 12, 0.8)
    assert (lo.trials, lo.successes) == (10, 3)
    assert w.posterior_mean > lo.posterior_mean
    # planning many slots: the winner gets most of them, choices are stable per idempotency key
    slots = [ImageSlot("daily", date(2026, 11, 21), "0900-food", i, "food", template=TEMPLATE) for i in range(60)]
    chooser = make_chooser(rt.db, TEMPLATE, ABConfig())
    assert chooser is not None
    picks = [create_variation(template, s, choose=chooser).variant for s in slots]
    assert Counter(picks)[winner] > 0.7 * len(slots)
    assert picks == [create_variation(template, s, choose=chooser).variant for s in slots]
    assert make_chooser(rt.db, TEMPLATE, ABConfig(strategy="uniform")) is None
    # record_planned uses it, and a planned row keeps its variant on resume
    pks = record_planned(rt.db, rt.library, slots[:10], ab=ABConfig())
    planned = [rt.db.get(pk).variant for pk in pks]
    assert planned == picks[:10]
    seed_outcomes(rt.db, loser, [("done", 1.0)] * 40, 300)  # history changes ...
    assert [rt.db.get(pk).variant for pk in record_planned(rt.db, rt.library, slots[:10], ab=ABConfig())] == planned


def test_report_and_cli(make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    rt = get_runtime()
    template = rt.library.get(TEMPLATE)
    variants = ["base", *sorted(template.variants)]
    seed_outcomes(rt.db, variants[1], [("done", 0.9)] * 8, 0)
    seed_outcomes(rt.db, variants[0], [("failed", None)] * 4 + [("done", 0.5)], 100)
    rows = report(rt.db, template=TEMPLATE, variants={TEMPLATE: variants})
    assert rows[0].variant == variants[1] and rows[-1].variant == variants[0]
    assert rows[0].p_best > 0.9 and abs(sum(r.p_best for r in rows) - 1) < 1e-3
    assert {r.variant for r in rows} == set(variants)  # variants without outcomes are listed too
    result = CliRunner().invoke(app, ["ab", "report", "--template", TEMPLATE, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data[0]["variant"] == variants[1] and data[0]["trials"] == 8 and data[0]["mean_quality"] == 0.9
    table = CliRunner().invoke(app, ["ab", "report"])
    assert table.exit_code == 0 and TEMPLATE in table.output and "P(best)" in table.output
    unknown = CliRunner().invoke(app, ["ab", "report", "--template", "nope"])
    assert unknown.exit_code == 2 and "no template with A/B variants" in unknown.output
