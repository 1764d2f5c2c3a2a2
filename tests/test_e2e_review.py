"""The review step end to end: a ``prefect server start`` subprocess on PostgreSQL, the
deployments served by ``content-pipeline serve`` (a suspended run needs a deployment), a
loopback AUTOMATIC1111 making real photos. A daily run whose categories require review
suspends; the review form is opened in headless Chromium (the run page's "Resume" button,
through the DevTools protocol) and must show each image's thumbnail (>= 320 px) directly
above its own decision (bounding boxes through the DevTools protocol), and the
deployments' run forms no "X | None" toggle; the test
then submits the decisions through the API as the UI's form does (``POST
/api/flow_runs/{id}/resume`` with ``run_input``): approve 2, reject 1, regenerate 1. The
run resumes, publishes the two, keeps the rejected one under rejected/, makes version 2
of the fourth and suspends again for it; "approve all" publishes it and the run completes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.prefect_stack import PROJECT_ROOT, ServedStack, pg_url, served_stack, tail, wait_for
from tests.servers import A1111Server

pytestmark = pytest.mark.timeout(900)

RUN_DATE = "2026-11-25"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStack]:
    with (
        A1111Server() as a1111,
        served_stack(
            tmp_path_factory.mktemp("e2e-review"),
            "review",
            {"daily-content/daily", "reserve/reserve"},
            chain=["automatic1111", "placeholder"],
            providers={"automatic1111": {"enabled": True, "base_url": a1111.url, "timeout_s": 30}},
            dedup={"enabled": False},  # the loopback server answers the same photo every time
            publishing={"review": {"*": "required"}, "on_demand_template": {"architecture": "modern-villa"}},
        ) as served,
    ):
        yield served


#: Per decision field of the Resume dialog (its label "Decision on <id>"): how many images its
#: header holds, the first one's natural width, and the bounding boxes (CSS pixels) of that
#: image's bottom and the field's own control's top (the select the field's body holds).
LAYOUT = """(() => {
  const out = {};
  for (const field of document.querySelectorAll('.schema-form-property')) {
    const label = field.querySelector(':scope > .p-label__header .schema-form-property__label');
    const name = label ? label.textContent.trim().replace(/ \\(Optional\\)$/, '') : '';
    if (!name.startsWith('Decision on ')) continue;
    const images = [...field.querySelectorAll(':scope > .p-label__header img')];
    const body = field.querySelector(':scope > .p-label__body');
    const control = body && body.querySelector('select, [role=combobox], button, input');
    out[name] = {
      images: images.length,
      naturalWidth: images.length ? images[0].naturalWidth : 0,
      imageBottom: images.length ? images[0].getBoundingClientRect().bottom : 1e9,
      controlTop: control ? control.getBoundingClientRect().top : -1,
    };
  }
  return out;
})()"""


def _flow_run(stack: ServedStack, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.server.api_url}/flow_runs/{run_id}", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def _suspended(stack: ServedStack, run_id: str, pause_key: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        run = _flow_run(stack, run_id)
        state = run["state"] or {}
        if state.get("type") in ("FAILED", "CRASHED", "COMPLETED", "CANCELLED"):
            raise AssertionError(f"the run ended {state.get('type')} before review: {state.get('message')}\n{tail(stack.serve.log, 60)}")
        details = state.get("state_details") or {}
        if state.get("name") == "Suspended" and details.get("pause_key") == pause_key:
            return run
        return None

    return wait_for(check, 300, f"flow run suspended for {pause_key}", stack.serve.log, stack.serve.process)


def _input(stack: ServedStack, run: dict[str, Any], which: str) -> Any:
    key = run["state"]["state_details"]["run_input_keyset"][which]
    response = httpx.get(f"{stack.server.api_url}/flow_runs/{run['id']}/input/{key}", timeout=10)
    response.raise_for_status()
    return response.json()


def _resume(stack: ServedStack, run_id: str, run_input: dict[str, Any]) -> None:
    response = httpx.post(f"{stack.server.api_url}/flow_runs/{run_id}/resume", json={"run_input": run_input}, timeout=30)
    response.raise_for_status()
    assert response.json()["status"] == "ACCEPT", response.text


def _rows(stack: ServedStack) -> list[Any]:
    from storage.db import Database

    db = Database(pg_url(stack.metrics_db, "psycopg"))
    try:
        return db.images(flow="daily")
    finally:
        db.dispose()


def _files(output: Path, top: str) -> list[str]:
    base = output / top
    return sorted(p.relative_to(output).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.endswith(".meta.json")) if base.exists() else []


@pytest.mark.usefixtures("chromium")  # skipped naming how to get it; fails under CI=true
def test_daily_run_suspends_for_review_resumes_from_the_api_and_publishes_the_approved(stack: ServedStack) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.cdp import Browser

    with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
        run = run_deployment("daily-content/daily", parameters={"run_date": RUN_DATE, "categories": ["food", "products"]}, timeout=0)
    run_id = str(run.id)
    suspended = _suspended(stack, run_id, "review-round-1")
    rows = _rows(stack)
    assert len(rows) == 4 and {r.status for r in rows} == {"in_review"}
    assert all(r.storage_key.startswith("review/") and not r.is_placeholder for r in rows)
    assert not _files(stack.output, "content")  # nothing published before the decision

    # the form: its schema lists a decision per image, each with that image's thumbnail as its description
    schema = _input(stack, suspended, "schema")
    schema = json.loads(schema) if isinstance(schema, str) else schema
    for row in rows:
        decision = schema["properties"][f"image_{row.image_id}"]
        assert decision["enum"] == ["wait", "approve", "reject", "regenerate"]
        assert decision["description"].count("data:image/jpeg;base64,") == 1 and row.provider in decision["description"]
    assert schema["properties"]["all_images"]["enum"] == ["wait", "approve all", "reject all"]

    # the same form in the Prefect UI, opened with the run page's Resume button
    shots = PROJECT_ROOT / "output" / "screenshots"
    with Browser(height=1600) as page:
        page.goto(f"{stack.server.url}/runs/flow-run/{run_id}")
        page.wait_for("[...document.querySelectorAll('button')].some(b => b.textContent.trim() === 'Resume')", 90)
        page.evaluate("[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Resume').click()")
        shown = page.wait_for(
            "(() => { const imgs = [...document.querySelectorAll('img')].filter(i => i.src.startsWith('data:image/jpeg'));"
            " return imgs.length === 4 && imgs.every(i => i.complete && i.naturalWidth > 0)"
            " && [...document.querySelectorAll('select, [role=combobox], button, input')].length > 0"
            " ? document.body.innerText : null })()",
            60,
        )
        target = page.screenshot(shots / "prefect-ui-review-form.png")
        # per image: the field labelled with its id holds its thumbnail (>= 320 px) above its own control
        layout = page.evaluate(LAYOUT)
        page.evaluate("[...document.querySelectorAll('img')].filter(i => i.src.startsWith('data:image/jpeg'))[1].scrollIntoView({block: 'center'})")
        thumbnails = page.screenshot(shots / "prefect-ui-review-thumbnails.png")
        # the run forms of the deployments: typed fields, no "X | None" toggle
        forms = {}
        for name in ("daily-content/daily", "reserve/reserve"):
            deployment = httpx.get(f"{stack.server.api_url}/deployments/name/{name}", timeout=10).json()
            page.goto(f"{stack.server.url}/deployments/deployment/{deployment['id']}/run")
            forms[name] = page.wait_for(
                "(() => { const t = document.body.innerText;"
                " return t.includes('Parameters') && document.querySelectorAll('.schema-form-property').length > 1 ? t : null })()",
                60,
            )
        page.screenshot(shots / "prefect-ui-run-form.png")
    assert "Resume Flow Run" in shown and "Reviewer" in shown and "All images" in shown
    assert all(row.image_id in shown for row in rows) and "regenerate" in shown
    assert sorted(layout) == sorted(f"Decision on {r.image_id}" for r in rows), layout
    for label, field in layout.items():
        assert field["images"] == 1 and field["naturalWidth"] >= 320, (label, field)
        assert field["imageBottom"] <= field["controlTop"] and field["controlTop"] - field["imageBottom"] < 300, (label, field)
    for name, text in forms.items():
        assert 'Property is type "None"' not in text and "| None" not in text, (name, text[:2000])
    assert "run_date" in forms["daily-content/daily"] and "for_date" in forms["reserve/reserve"]
    for picture in (target, thumbnails):
        with Image.open(picture) as image:
            assert image.size == (1400, 1600) and len(set(image.convert("L").resize((70, 80)).getdata())) > 8

    # the decisions, posted as the form does: approve 2, reject 1, regenerate 1
    by_slot = sorted(rows, key=lambda r: (r.category, r.slot_index))
    approve, reject, regenerate = by_slot[:2], by_slot[2], by_slot[3]
    decisions = {
        "reviewer": "e2e-reviewer",
        "note": "",
        **{f"image_{r.image_id}": "approve" for r in approve},
        f"image_{reject.image_id}": "reject",
        f"note_{reject.image_id}": "off-brand colours",
        f"image_{regenerate.image_id}": "regenerate",
        f"note_{regenerate.image_id}": "try another seed",
    }
    _resume(stack, run_id, decisions)

    second = _suspended(stack, run_id, "review-round-2")  # the new version waits for its own review
    rows = {r.id: r for r in _rows(stack)}
    [v2] = [r for r in rows.values() if r.version == 2]
    assert v2.previous_pk == regenerate.id and v2.status == "in_review" and v2.seed != regenerate.seed
    assert [rows[r.id].status for r in approve] == ["done", "done"] and all(rows[r.id].published_at for r in approve)
    assert (rows[reject.id].status, rows[reject.id].review_note, rows[reject.id].reviewed_by) == ("rejected", "off-brand colours", "e2e-reviewer")
    assert rows[regenerate.id].status == "rejected" and "try another seed" in (rows[regenerate.id].review_note or "")
    schema = _input(stack, second, "schema")
    schema = json.loads(schema) if isinstance(schema, str) else schema
    assert [k for k in schema["properties"] if k.startswith("image_")] == [f"image_{v2.image_id}"]
    _resume(stack, run_id, {"reviewer": "e2e-reviewer", "all_images": "approve all"})  # "approve all" decides the one left

    final = wait_for(
        lambda: (r := _flow_run(stack, run_id))["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED") and r,
        300,
        "the resumed run finishing",
        stack.serve.log,
        stack.serve.process,
    )
    assert final["state"]["type"] == "COMPLETED", f"{final['state']}\n{tail(stack.serve.log, 60)}"
    rows = {r.id: r for r in _rows(stack)}
    published = sorted(r.id for r in rows.values() if r.status == "done" and r.published_at)
    assert published == sorted([approve[0].id, approve[1].id, v2.id])  # exactly the approved, plus the new version
    assert all(rows[pk].storage_key.startswith("content/") for pk in published)
    content = _files(stack.output, "content")
    published_files = {f for pk in published for f in _files(stack.output, "content") if rows[pk].image_id in f}
    assert set(content) == published_files and len(content) == 3 * 4  # original, web, thumb, sidecar each
    rejected = _files(stack.output, "rejected")
    assert {reject.image_id, regenerate.image_id} == {r.image_id for r in rows.values() if r.status == "rejected"}
    assert all(any(r.image_id in f for f in rejected) for r in (reject, regenerate))
    assert not _files(stack.output, "review")


def test_reserve_deployment_called_through_the_api(stack: ServedStack) -> None:
    """Another system reserves through Prefect's API: two food images are published (the
    test above), so two calls reserve two different ones and the third run fails, saying why."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from storage.db import Database
    from storage.reservations import list_reservations

    published = [r for r in _rows(stack) if r.category == "food" and r.status == "done" and r.published_at]
    assert len(published) == 2
    parameters = {"category": "food", "for_date": "2026-12-03", "channel": "instagram"}
    with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
        runs = [run_deployment("reserve/reserve", parameters=parameters, timeout=240, poll_interval=1) for _ in range(3)]
    assert [r.state.type.value for r in runs] == ["COMPLETED", "COMPLETED", "FAILED"], [r.state for r in runs]
    assert "no free published image of category 'food' for 2026-12-03" in (runs[2].state.message or "")
    db = Database(pg_url(stack.metrics_db, "psycopg"))
    try:
        reservations = list_reservations(db)
    finally:
        db.dispose()
    assert sorted(r.image_pk for r in reservations) == sorted(r.id for r in published)
    assert {(r.for_date.isoformat(), r.channel, r.reserved_by) for r in reservations} == {("2026-12-03", "instagram", "prefect")}


def test_reserve_with_nothing_free_requests_an_on_demand_generation(stack: ServedStack) -> None:
    """No architecture image exists; the category has an on-demand template: the reserve run
    completes having started one ad-hoc generation of that template for the date."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
        run = run_deployment("reserve/reserve", parameters={"category": "architecture", "for_date": "2026-12-04"}, timeout=240, poll_interval=1)
        assert run.state is not None and run.state.is_completed(), run.state
        with get_client(sync_client=True) as client:
            adhoc = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["adhoc"])))
    requested = [r for r in adhoc if r.parameters.get("batch") == "on-demand-architecture-2026-12-04"]
    assert len(requested) == 1 and requested[0].parameters["template"] == "modern-villa"
    assert requested[0].parameters["count"] == 1
