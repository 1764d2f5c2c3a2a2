"""End to end on real engines: a ``prefect server start`` subprocess on PostgreSQL, the
deployments served by ``content-pipeline serve``, triggered through the API as the UI
does, seen in headless Chromium, and the daily flow run by two process workers.

One server subprocess serves every test of this module (module fixture ``stack``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.prefect_stack import (
    PROJECT_ROOT,
    Proc,
    ServedStack,
    base_env,
    create_database,
    drop_database,
    pg_url,
    served_stack,
    tail,
    wait_for,
    write_config,
)
from tests.servers import A1111Server

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStack]:
    deployments = {"generate/adhoc", "daily-content/daily", "weekly-content/weekly", "weekly-report/weekly-report"}
    with served_stack(tmp_path_factory.mktemp("e2e"), "served", deployments) as served:
        yield served


@pytest.fixture(scope="module")
def adhoc_run(stack: ServedStack) -> Any:
    """The ad-hoc deployment triggered with parameters, as the UI's Run form does."""
    from prefect.deployments import run_deployment

    with stack.settings():
        run = run_deployment(
            "generate/adhoc",
            parameters={"template": "pasta-dish", "count": 3, "quality": "hd", "format": "landscape", "batch": "e2e"},
            timeout=240,
            poll_interval=1,
        )
    # offline defaults: placeholders stand in, so the run ends Failed and says why (automations fire)
    assert run.state is not None and run.state.is_failed(), f"{run.state}\n{tail(stack.serve.log)}"
    assert run.state.message == "3 of 3 images not done as real content: 3 placeholder", run.state.message
    return run


def test_served_adhoc_deployment_runs_from_the_api_and_tells_its_story(stack: ServedStack, adhoc_run: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    from storage.db import Database

    with stack.settings(), get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[adhoc_run.id])))}
        # logs reach the server in batches (every ~2 s), possibly after the run is Completed
        logs = wait_for(
            lambda: (
                (text := "\n".join(log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[adhoc_run.id]))))).count(
                    " placeholder: "
                )
                >= 3
                and text
            ),
            30,
            "the ad-hoc run's logs",
        )
        deployment = client.read_deployment_by_name("generate/adhoc")
    assert adhoc_run.name == "generate-pasta-dish"
    assert {"adhoc-run-summary", "adhoc-progress", "adhoc-gallery"} <= set(artifacts)
    assert artifacts["adhoc-progress"].type == "progress" and float(artifacts["adhoc-progress"].data) == 100.0
    table = artifacts["adhoc-run-summary"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert len(table) == 3 and {row["status"] for row in table} == {"placeholder"}
    # the template choice list reached the server with the deployment
    assert "pasta-dish" in deployment.parameter_openapi_schema["properties"]["template"]["enum"]

    rows = Database(pg_url(stack.metrics_db, "psycopg")).images(key_prefix="adhoc:")
    mine = [r for r in rows if r.slot == "e2e-pasta-dish"]
    assert len(mine) == 3 and {r.status for r in mine} == {"placeholder"} and {r.trigger for r in mine} == {"deployment"}
    gallery = artifacts["adhoc-gallery"].data
    for row in mine:
        assert f"slot e2e-pasta-dish#{row.slot_index} image {row.image_id}" in logs
        path = stack.output / row.storage_key
        with Image.open(path) as image:
            assert image.size == (1792, 1024)  # format=landscape reached the provider
        assert row.image_id in gallery
    thumbs = [part.split(")")[0] for part in gallery.split("](")[1:]]
    assert len(thumbs) == 3 and all(t.startswith("data:image/jpeg;base64,") for t in thumbs)  # inline: they load


def test_served_daily_without_a_date_makes_today_of_the_chosen_categories(stack: ServedStack) -> None:
    """As a scheduled run does: no run_date; the UI's category choice keeps only those slots."""
    from prefect.deployments import run_deployment

    from storage.db import Database
    from generation.plan import local_today

    with stack.settings():
        run = run_deployment("daily-content/daily", parameters={"categories": ["food"]}, timeout=240, poll_interval=1)
    assert run.state.is_failed() and "2 placeholder" in (run.state.message or ""), f"{run.state}\n{tail(stack.serve.log)}"
    today = local_today("UTC")
    assert run.name == f"daily-{today.isoformat()}"
    rows = Database(pg_url(stack.metrics_db, "psycopg")).images(flow="daily", run_date=today)
    assert len(rows) == 2 and {r.category for r in rows} == {"food"} and {r.status for r in rows} == {"placeholder"}


def test_out_of_range_parameters_are_rejected_by_the_server(stack: ServedStack) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.deployments import run_deployment
    from prefect.exceptions import PrefectHTTPStatusError

    bad = [
        {"template": "pasta-dish", "count": 51},
        {"template": "pasta-dish", "count": 0},
        {"template": "no-such-template", "count": 1},
        {"template": "pasta-dish", "quality": "8k"},
    ]
    bad_daily = [{"categories": ["cars"]}, {"run_date": "21/11/2026"}]
    with stack.settings(), get_client(sync_client=True) as client:
        adhoc_only = DeploymentFilter(name=DeploymentFilterName(any_=["adhoc"]))
        before = client.count_flow_runs(deployment_filter=adhoc_only)
        for parameters in bad:
            with pytest.raises(PrefectHTTPStatusError) as caught:
                run_deployment("generate/adhoc", parameters=parameters, timeout=0)
            assert caught.value.response.status_code == 409, parameters
            assert "Validation failed" in caught.value.response.text or "validation" in caught.value.response.text.lower()
        assert client.count_flow_runs(deployment_filter=adhoc_only) == before
        for parameters in bad_daily:
            with pytest.raises(PrefectHTTPStatusError) as caught:
                run_deployment("daily-content/daily", parameters=parameters, timeout=0)
            assert caught.value.response.status_code == 409, parameters


SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def _shot(page: Any, name: str) -> Path:
    """A screenshot of the page, made small (256-colour PNG) for the README: written to
    docs/screenshots/ when CP_UPDATE_SCREENSHOTS=1, else to output/screenshots/."""
    import os

    folder = SCREENSHOTS if os.environ.get("CP_UPDATE_SCREENSHOTS") == "1" else PROJECT_ROOT / "output" / "screenshots"
    raw = page.screenshot(stack_tmp := folder / f".{name}.raw.png")
    with Image.open(raw) as image:
        assert image.size == (1400, 1000)
        assert len(set(image.convert("L").resize((70, 50)).getdata())) > 8  # a rendered page, not a blank
        small = image.convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT)
        target = folder / f"{name}.png"
        small.save(target, optimize=True)
    stack_tmp.unlink()
    assert target.stat().st_size < 150_000, (target, target.stat().st_size)
    return target


_LOADED = (
    "(() => {{ const imgs = [...document.querySelectorAll({selector!r})];"
    " return imgs.length >= {count} && imgs.every(i => i.complete)"
    " && imgs.map(i => i.naturalWidth); }})()"
)


def _gallery_id(api_url: str, run_id: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        [gallery] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["adhoc-gallery"])), flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return gallery.id


@pytest.mark.usefixtures("chromium")  # skipped naming how to get it; fails under CI=true
def test_prefect_ui_in_headless_chromium_shows_logs_and_every_thumbnail(stack: ServedStack, adhoc_run: Any) -> None:
    """The Prefect UI as a person sees it (Chrome DevTools Protocol, tests/cdp.py): the
    deployments page, the run form, the served run's Logs tab with INFO lines naming each
    image, and its gallery artifact with every thumbnail loaded (naturalWidth > 0)."""
    from prefect.client.orchestration import get_client

    from storage.db import Database
    from tests.cdp import Browser

    with stack.settings(), get_client(sync_client=True) as client:
        adhoc_id = client.read_deployment_by_name("generate/adhoc").id
    rows = [r for r in Database(pg_url(stack.metrics_db, "psycopg")).images(key_prefix="adhoc:") if r.slot == "e2e-pasta-dish"]
    assert len(rows) == 3
    ui = stack.server.url
    with Browser() as page:
        page.goto(f"{ui}/deployments")
        page.wait_for("document.body.innerText.includes('adhoc') && document.body.innerText.includes('weekly-report')", what="the deployments page")
        _shot(page, "deployments")

        page.goto(f"{ui}/deployments/deployment/{adhoc_id}/run")
        page.wait_for("['template', 'count', 'quality', 'format'].every(w => document.body.innerText.includes(w))", what="the run form")
        _shot(page, "run-form")

        page.goto(f"{ui}/runs/flow-run/{adhoc_run.id}?tab=Logs")
        names = [f"slot e2e-pasta-dish#{r.slot_index} image {r.image_id}" for r in rows]
        logs = page.wait_for(
            f"(() => {{ const t = document.body.innerText; return {json.dumps(names)}.every(n => t.includes(n)) && t; }})()",
            what="INFO lines naming every image in the Logs tab",
        )
        assert "INFO" in logs
        for name in names:  # the start line (with the idempotency key), the outcome line, the progress line
            assert f"{name} (adhoc:" in logs and f"{name} progress: placeholder" in logs
            assert f"{name} placeholder: placeholder/" in logs or f"{name} done: " in logs

        page.wait_for(
            "(() => { const tab = [...document.querySelectorAll('body *')].find(e => e.children.length === 0"
            " && e.textContent.trim() === 'Artifacts'); if (tab) tab.click(); return !!tab; })()",
            what="the Artifacts tab of the run page",
        )
        page.wait_for("['adhoc-gallery', 'adhoc-run-summary'].every(k => document.body.innerText.includes(k))", what="the run's artifacts listed")
        _shot(page, "run-artifacts")

        page.goto(f"{ui}/artifacts/artifact/{_gallery_id(stack.server.api_url, adhoc_run.id)}")
        widths = page.wait_for(_LOADED.format(selector="img[alt]", count=3), what="the gallery's thumbnails")
        assert len(widths) == 3 and all(w > 0 for w in widths), widths
        sources = page.evaluate("[...document.querySelectorAll('img[alt]')].map(i => i.src.slice(0, 22))")
        assert all(src.startswith("data:image/jpeg") for src in sources), sources
        _shot(page, "gallery")


@pytest.mark.usefixtures("chromium")  # skipped naming how to get it; fails under CI=true
def test_s3_gallery_thumbnails_load_in_the_prefect_ui(stack: ServedStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same gallery on an S3 store (moto's server): presigned thumbnails that load."""
    from tests.cdp import Browser
    from tests.s3server import S3Server

    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in creds.items():
        monkeypatch.setenv(name, value)
    with S3Server() as s3:
        s3.client().create_bucket(Bucket="ui-gallery")
        config = write_config(
            stack.workdir / "s3.yaml", stack.workdir / "s3-output", stack.metrics_db, storage_url="s3://ui-gallery/studio", s3={"endpoint_url": s3.url}
        )
        env = base_env(stack.home, PREFECT_API_URL=stack.server.api_url, CONTENT_PIPELINE_CONFIG=str(config), **creds)
        script = (
            "from flows.adhoc import generate; "
            "state = generate(template='sneaker', count=2, batch='s3-ui', return_state=True); "
            "from reporting.summary import IncompleteRunError; "
            # offline placeholders: the run ends Failed with IncompleteRunError (exit codes tell the truth)
            "assert state.is_completed() or isinstance(state.result(raise_on_failure=False), IncompleteRunError), "
            "state; print('RUN', state.state_details.flow_run_id)"
        )
        done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        run_id = done.stdout.split("RUN", 1)[1].split()[0]
        with Browser() as page:
            page.goto(f"{stack.server.url}/artifacts/artifact/{_gallery_id(stack.server.api_url, uuid.UUID(run_id))}")
            widths = page.wait_for(_LOADED.format(selector="img[alt]", count=2), what="the S3 gallery's thumbnails")
            assert len(widths) == 2 and all(w > 0 for w in widths), widths
            sources = page.evaluate("[...document.querySelectorAll('img[alt]')].map(i => i.src)")
            assert all(src.startswith(s3.url) and "X-Amz-Signature=" in src for src in sources), sources


def _runs_started_by(worker_log: Path) -> list[str]:
    """Flow-run ids a worker submitted and the server did not abort (prefect.flow_runs.worker lines)."""
    text = worker_log.read_text(errors="replace")
    submitted = re.findall(r"submitting flow run '([0-9a-f-]{36})'", text)
    aborted = set(re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", text))
    return [run for run in submitted if run not in aborted]


def test_daily_flow_on_two_process_workers_makes_every_image_exactly_once(stack: ServedStack) -> None:
    """Two ``prefect worker start`` processes of one process pool run two daily dates at once
    against the PostgreSQL-backed server; the metrics DB is PostgreSQL; the provider, a
    loopback AUTOMATIC1111 server (real images: the runs end Completed), is limited to one
    call at a time across both workers by a Prefect global concurrency limit."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment

    from flows.daily import daily_content
    from storage.db import AttemptRecord, Database, RenditionRecord
    from generation.plan import plan_daily
    from domain.templates import TemplateLibrary

    metrics_db = create_database("cp_scale")
    pool = f"cp-pool-{uuid.uuid4().hex[:6]}"
    output = stack.workdir / "scale-output"
    a1111 = A1111Server(delay_s=0.2).__enter__()
    config = write_config(
        stack.workdir / "scale.yaml",
        output,
        metrics_db,
        chain=["automatic1111", "placeholder"],
        dedup={"enabled": False},
        providers={"automatic1111": {"enabled": True, "base_url": a1111.url, "timeout_s": 120}},
        scale={"global_limits": True, "provider_limits": {"automatic1111": 1}},
    )
    workers: list[Proc] = []
    db = Database(pg_url(metrics_db, "psycopg"))
    try:
        with stack.settings(), get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            # the limit is made by the first run when missing; drop a leftover from a previous test run
            try:
                client.delete_global_concurrency_limit_by_name("provider-automatic1111")
            except Exception:  # none yet
                pass
            daily_content.from_source(source=str(PROJECT_ROOT), entrypoint="flows/daily.py:daily_content").deploy(
                name="daily-scale",
                work_pool_name=pool,
                build=False,
                push=False,
                print_next_steps=False,
                job_variables={"env": {"CONTENT_PIPELINE_CONFIG": str(config)}},
            )
        for name in ("worker-a", "worker-b"):
            env = base_env(stack.home, PREFECT_API_URL=stack.server.api_url, PREFECT_WORKER_QUERY_SECONDS="1", CONTENT_PIPELINE_CONFIG=str(config))
            prefect = str(Path(sys.executable).with_name("prefect"))
            workers.append(Proc([prefect, "worker", "start", "--pool", pool, "--limit", "1", "--name", name], env, stack.workdir / f"{name}.log"))
        with stack.settings(), get_client(sync_client=True) as client:
            # both workers polling before anything is triggered (each sends a heartbeat when it starts)
            wait_for(
                lambda: {w.name for w in client.read_workers_for_work_pool(pool)} >= {"worker-a", "worker-b"},
                120,
                "two workers polling the pool",
                workers[1].log,
            )
        days = [date(2026, 11, 23), date(2026, 11, 24)]
        with stack.settings():
            runs = [run_deployment("daily-content/daily-scale", parameters={"run_date": d.isoformat()}, timeout=0) for d in days]
        with stack.settings(), get_client(sync_client=True) as client:
            final = wait_for(
                lambda: (states := [client.read_flow_run(r.id) for r in runs]) and all(s.state and s.state.is_final() for s in states) and states,
                300,
                "two daily runs on the workers",
                workers[0].log,
            )
            assert all(s.state.is_completed() for s in final), [(s.name, s.state) for s in final]
            limit = client.read_global_concurrency_limit_by_name("provider-automatic1111")
        assert limit.limit == 1

        # each worker (limit 1) ran one of the two runs
        # (both may try the same run: the server lets one through and aborts the other's submission)
        ran_by = {w.log.stem: _runs_started_by(w.log) for w in workers}
        assert sorted(len(v) for v in ran_by.values()) == [1, 1], (ran_by, tail(workers[0].log), tail(workers[1].log))
        assert sorted(r for v in ran_by.values() for r in v) == sorted(str(r.id) for r in runs)

        library = TemplateLibrary.load(PROJECT_ROOT / "templates")
        expected = {s.idempotency_key for d in days for s in plan_daily(library.schedules, d)}
        rows = db.images(flow="daily")
        assert len(rows) == len(expected) == 16
        assert {r.idempotency_key for r in rows} == expected and {r.status for r in rows} == {"done"}
        with db.session() as session:
            from sqlmodel import select

            attempts = list(session.exec(select(AttemptRecord)))
            renditions = list(session.exec(select(RenditionRecord)))
        successes = [a for a in attempts if a.status == "success"]
        assert sorted(a.image_pk for a in successes) == sorted(r.id for r in rows)  # one generation per image
        files = sorted(
            p.relative_to(output).as_posix()
            for p in output.rglob("*")
            # the data directory also holds the spool and the installation's C2PA signer (never published)
            if p.is_file() and not p.name.endswith(".meta.json") and not {"spool", "credentials"} & set(p.parts)
        )
        sidecars = [r.sidecar_key for r in rows]  # the provenance JSON next to each original
        assert files == sorted([r.storage_key for r in renditions] + sidecars) and len(files) == 16 * 4

        # the global limit (1 slot) kept the provider calls of both workers from overlapping
        spans = sorted((a.created_at.timestamp() - a.latency_s, a.created_at.timestamp()) for a in successes)
        overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1] - 0.05]
        assert not overlaps, overlaps

        # a date run again finds everything made: no new attempt, no new file
        with stack.settings():
            again = run_deployment("daily-content/daily-scale", parameters={"run_date": days[0].isoformat()}, timeout=240, poll_interval=1)
        assert again.state.is_completed()
        with db.session() as session:
            assert len(list(session.exec(select(AttemptRecord)))) == len(attempts)
        assert (
            len([p for p in output.rglob("*") if p.is_file() and not {"spool", "credentials"} & set(p.parts) and not p.name.endswith(".meta.json")]) == 16 * 4
        )
    finally:
        for worker in workers:
            worker.stop()
        a1111.__exit__(None, None, None)
        db.dispose()
        drop_database(metrics_db)


def test_prefect_yaml_deploys_to_the_process_pool(stack: ServedStack) -> None:
    """``prefect deploy --prefect-file deployments/prefect.yaml`` against the server: the
    schedules keep cron + timezone, the scheduled ones get concurrency 1, all go to the pool.
    (Runs last: it re-points the served daily/weekly/adhoc deployments at the pool.)"""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with stack.settings(), get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="content-pipeline", type="process"))
    env = base_env(stack.home, PREFECT_API_URL=stack.server.api_url, CONTENT_PIPELINE_HOME=str(PROJECT_ROOT))
    prefect = str(Path(sys.executable).with_name("prefect"))
    done = subprocess.run(
        [prefect, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--name", "daily", "--name", "weekly", "--name", "adhoc"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with stack.settings(), get_client(sync_client=True) as client:
        daily = client.read_deployment_by_name("daily-content/daily")
        weekly = client.read_deployment_by_name("weekly-content/weekly")
        adhoc = client.read_deployment_by_name("generate/adhoc")
    for deployment, cron in ((daily, "0 6 * * *"), (weekly, "0 9 * * *")):
        assert deployment.work_pool_name == "content-pipeline"
        (schedule,) = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == (cron, "UTC")
        assert deployment.global_concurrency_limit is not None and deployment.global_concurrency_limit.limit == 1
        assert deployment.enforce_parameter_schema
        assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}]
    assert adhoc.work_pool_name == "content-pipeline" and not adhoc.schedules
    assert adhoc.parameters["template"] == "pasta-dish"
    assert adhoc.parameter_openapi_schema["properties"]["count"]["maximum"] == 50
