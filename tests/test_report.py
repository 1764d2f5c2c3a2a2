"""Reports from a seeded database: figures, PNG charts, an HTML contact sheet opened in
headless Chromium (screenshot kept in test-artifacts/), the CLI and the weekly flow."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from storage.db import AttemptRecord, Database, ImageRecord, RenditionRecord
from storage.objects import LocalStore, sha256_hex
from reporting.report import build_report, period, write_report
from tests.chromium import screenshot
from tests.servers import photo
from storage import queries

ARTIFACTS = Path(os.environ.get("CP_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
DAY = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday


def seed(db: Database, store: LocalStore | None) -> None:
    """Two providers over three days: stability 3 images (2, 4, 6 s; USD 0.03 each) and a
    failure; the placeholder 2 images; one attempt outside the period."""
    plan = [  # (day offset, provider, model, latency, status, cost, photo)
        (0, "stability", "sd3-medium", 2.0, "success", 0.03, "coffee"),
        (0, "stability", "sd3-medium", 9.0, "failed", 0.0, None),
        (1, "stability", "sd3-medium", 4.0, "success", 0.03, "chelsea"),
        (2, "stability", "sd3-medium", 6.0, "success", 0.03, "rocket"),
        (2, "placeholder", "placeholder-v1", 0.1, "success", 0.0, "astronaut"),
        (2, "placeholder", "placeholder-v1", 0.1, "success", 0.0, "coffee"),
        (9, "stability", "sd3-medium", 50.0, "success", 5.0, None),  # after the period
    ]
    with db.session() as session:
        for index, (offset, provider, model, latency, status, cost, name) in enumerate(plan):
            when = DAY + timedelta(days=offset, minutes=index)
            placeholder = provider == "placeholder"
            image = ImageRecord(
                idempotency_key=f"daily:{when.date()}:0600:{index}",
                image_id=f"img{index:09d}",
                flow="daily",
                run_date=when.date(),
                slot="0600",
                slot_index=index,
                category="food",
                template="pasta-dish",
                prompt=f"overhead food photography, dish number {index}",
                provider=provider if status == "success" else None,
                model=model,
                seed=index,
                is_placeholder=placeholder,
                cost_usd=cost,
                seconds=latency,
                trigger="schedule",
                status="done" if status == "success" else "failed",
                created_at=when,
                updated_at=when,
            )
            session.add(image)
            session.flush()
            session.add(
                AttemptRecord(
                    image_pk=image.id,
                    provider=provider,
                    model=model,
                    status=status,
                    latency_s=latency,
                    cost_usd=cost,
                    created_at=when,
                    error="HTTP 500" if status == "failed" else None,
                )
            )
            if name and store is not None:
                key = f"{'placeholder' if placeholder else 'content'}/food/2026/11/pasta-dish-{image.image_id}"
                data = photo(640, 480, name)
                store.put(f"{key}.png", data, content_type="image/png")
                session.add(
                    RenditionRecord(
                        image_pk=image.id,
                        name="original",
                        storage_key=f"{key}.png",
                        format="png",
                        width=640,
                        height=480,
                        bytes=len(data),
                        checksum=sha256_hex(data),
                    )
                )
                image.storage_key = f"{key}.png"
                session.add(image)
        session.commit()


def test_report_figures(db_url: str) -> None:
    db = Database(db_url)
    seed(db, None)
    since, until = period(date(2026, 11, 16), date(2026, 11, 22))
    report = build_report(db, since, until)
    by_provider = {s.provider: s for s in report.stats}
    stability = by_provider["stability"]
    assert (stability.model, stability.images, stability.calls, stability.failures) == ("sd3-medium", 3, 4, 1)
    assert stability.success_rate == pytest.approx(0.75)
    assert stability.mean_s == pytest.approx(4.0)
    assert stability.p95_s == pytest.approx(5.8)  # numpy linear percentile of 2, 4, 6
    assert stability.cost_usd == pytest.approx(0.09) and stability.cost_per_image == pytest.approx(0.03)
    assert stability.mean_quality is None
    assert by_provider["placeholder"].images == 2 and by_provider["placeholder"].cost_per_image == 0
    assert report.total_cost == pytest.approx(0.09)  # the USD 5 call after the period is not counted
    assert report.cost_per_day[date(2026, 11, 17)] == {"stability": pytest.approx(0.03)}
    text = report.text()
    assert "stability" in text and "75 %" in text and "n/a" in text
    db.dispose()


@pytest.mark.usefixtures("chromium")
def test_charts_and_contact_sheet_open_in_chromium(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'metrics.db'}")
    store = LocalStore(tmp_path / "store")
    seed(db, store)
    since, until = period(date(2026, 11, 16), date(2026, 11, 22))
    report, files = write_report(db, store, since, until, tmp_path / "report")
    names = sorted(p.name for p in files)
    assert names == ["cost-per-day.png", "index.html", "latency.png", "success-rate.png"]
    for png in (p for p in files if p.suffix == ".png"):
        with Image.open(png) as chart:
            assert chart.format == "PNG" and chart.size == (800, 400)
            assert len(chart.convert("RGB").getcolors(100_000) or []) > 20  # drawn, not blank
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count('class="card"') == 5 and page.count("data:image/jpeg;base64,") == 5
    assert page.count('<img class="chart"') == 3 and page.count("data:image/png;base64,") == 3  # charts shown
    assert page.count("placeholder</span>") == 2 and "sd3-medium" in page

    # the check can fail: a page with a script error is caught
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert any("undefinedFunction" in m for m in screenshot(broken.as_uri(), tmp_path / "broken.png"))

    shot = ARTIFACTS / "report-contact-sheet.png"
    messages = screenshot((tmp_path / "report" / "index.html").as_uri(), shot)
    assert messages == []
    with Image.open(shot) as image:
        assert image.size == (1280, 1400)
        assert len(image.convert("RGB").getcolors(1_000_000) or []) > 1000  # photos rendered
    for png in (p for p in files if p.suffix == ".png"):
        (ARTIFACTS / png.name).write_bytes(png.read_bytes())
    db.dispose()


def test_every_call_counts_under_its_provider_no_phantom_row(db_url: str) -> None:
    """AUTOMATIC1111 answered 12 of 17 calls; the 5 that failed before any answer carry
    the placeholder model name ``server-default``: one row at 71 %, not 100 % plus a 0 % row."""
    db = Database(db_url)
    with db.session() as session:
        for index in range(17):
            ok = index % 17 < 12
            when = DAY + timedelta(minutes=index)
            image = ImageRecord(
                idempotency_key=f"k{index}",
                image_id=f"a1111{index:07d}",
                flow="daily",
                run_date=when.date(),
                slot="0600",
                slot_index=index,
                category="food",
                status="done" if ok else "failed",
                created_at=when,
                updated_at=when,
            )
            session.add(image)
            session.flush()
            session.add(
                AttemptRecord(
                    image_pk=image.id,
                    provider="automatic1111",
                    model="sd_xl_base_1.0" if ok else "server-default",
                    status="success" if ok else "failed",
                    latency_s=3.0,
                    created_at=when,
                )
            )
        # a provider that never answered: its failures get a row of their own, model unknown
        session.add(AttemptRecord(image_pk=image.id, provider="flux_studio", model=None, status="failed", latency_s=1.0, created_at=DAY))
        session.commit()
    since, until = period(date(2026, 11, 16), date(2026, 11, 22))
    report = build_report(db, since, until)
    assert [(s.provider, s.model, s.images, s.calls) for s in report.stats] == [("automatic1111", "sd_xl_base_1.0", 12, 17), ("flux_studio", "(unknown)", 0, 1)]
    assert round(report.stats[0].success_rate * 100) == 71
    assert "server-default" not in report.text()
    db.dispose()


def test_cost_chart_draws_the_cap_and_never_a_negative_axis(tmp_path: Path) -> None:
    from reporting.report import CAP_COLOUR, Report, cost_axis, write_charts

    assert cost_axis([0.0, 0.0, 0.0], None) == (0.0, 1.0)  # matplotlib alone centres it on 0: -0.05..0.05
    assert cost_axis([0.0, 0.0], 5.0) == (0.0, pytest.approx(5.75))
    assert cost_axis([2.0, 8.0], 5.0) == (0.0, pytest.approx(9.2))
    since, until = period(date(2026, 11, 16), date(2026, 11, 22))
    empty = Report(since, until, [], {date(2026, 11, 16): {"placeholder": 0.0}})
    red = tuple(int(CAP_COLOUR[i : i + 2], 16) for i in (1, 3, 5))

    def cap_pixels(cap: float | None) -> int:
        [cost, *_] = write_charts(empty, tmp_path / str(cap), daily_cap_usd=cap)
        with Image.open(cost) as chart:
            return sum(count for count, colour in chart.convert("RGB").getcolors(1_000_000) or [] if max(abs(a - b) for a, b in zip(colour, red)) < 40)

    assert cap_pixels(5.0) > 300 and cap_pixels(None) == 0  # the dashed cap line (and its legend), or nothing


def test_report_command(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cli.main import app
    from wiring.runtime import get_runtime

    make_config()
    rt = get_runtime()
    seed(rt.db, rt.store)  # type: ignore[arg-type]
    out = tmp_path / "weekly"
    result = CliRunner().invoke(app, ["report", "--since", "2026-11-16", "--until", "2026-11-22", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "stability" in result.output and "75 %" in result.output and "0.030" in result.output
    assert (out / "index.html").is_file() and (out / "cost-per-day.png").is_file()
    bad = CliRunner().invoke(app, ["report", "--since", "2026-11-23", "--until", "2026-11-22"])
    assert bad.exit_code == 2 and "is after" in bad.output


@pytest.mark.usefixtures("prefect_server")
def test_weekly_report_flow_sends_charts(make_config, sink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import base64

    from flows.report import weekly_report
    from wiring.runtime import get_runtime

    monkeypatch.setenv("APPRISE_URLS", f"json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/reports")
    make_config()
    rt = get_runtime()
    seed(rt.db, rt.store)  # type: ignore[arg-type]
    summary = weekly_report(until=date(2026, 11, 22))
    assert summary["delivered"] is True and summary["images"] == 5

    # the run is named after its period and publishes the table, the charts and the sheet's link
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["weekly-report"])))
    assert "report-2026-11-16-to-2026-11-22" in {r.name for r in runs}
    table = Artifact.get("weekly-report")
    assert table is not None and "2026-11-16 to 2026-11-22" in (table.description or "")
    assert "stability" in str(table.data) and "75 %" in str(table.data)
    charts = Artifact.get("weekly-report-charts")
    assert charts is not None and charts.data.count("](data:image/png;base64,") == 3
    sheet = Artifact.get("weekly-report-contact-sheet")
    assert sheet is not None and "2026-11-16_2026-11-22/index.html" in sheet.data and "file://" not in sheet.data
    assert sheet.type == "markdown" and sheet.data.count("](data:image/jpeg;base64,") == 1 and len(sheet.data) < 600_000  # inlined: the UI shows it
    assert Path(summary["files"][-1]).parent.name == "2026-11-16_2026-11-22"
    [body] = sink.json_bodies()
    assert "USD 0.09" in body["title"] and "stability" in body["message"]
    attached = {a["filename"]: base64.b64decode(a["base64"]) for a in body["attachments"]}
    assert sorted(attached) == ["cost-per-day.png", "latency.png", "success-rate.png"]
    assert all(data.startswith(b"\x89PNG") for data in attached.values())
    assert [a.rule for a in queries.alerts(rt.db)] == ["weekly-report"]


def test_history_command_tells_each_generation_story(make_config) -> None:  # type: ignore[no-untyped-def]
    from cli.main import app
    from wiring.runtime import get_runtime

    make_config()
    seed(get_runtime().db, None)
    result = CliRunner().invoke(app, ["history", "--since", "2026-11-16", "--until", "2026-11-22"])
    assert result.exit_code == 0, result.output
    assert "6 generations" in result.output  # the seventh is after the period
    assert "schedule" in result.output and "dish number 0" in result.output
    assert "stability failed 9.0s USD 0.000" in result.output and "stability success 2.0s USD 0.030" in result.output
    assert "HTTP 500" in result.output  # the error's message, not only its class
