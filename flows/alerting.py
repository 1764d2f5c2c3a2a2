"""The flow-failed alert as a flow, run by a Prefect automation where a server runs.

The flows' own ``on_failure`` / ``on_crashed`` hooks alert from inside the flow run's
process; when that process dies outright (killed, out of memory, machine lost) the
server still marks the run Crashed and emits ``prefect.flow-run.Crashed``. The
automation made by ``ensure_failure_automation`` (``content-pipeline serve`` calls it)
reacts to ``prefect.flow-run.Failed`` / ``Crashed`` / ``TimedOut`` events of flow runs
tagged ``content-pipeline`` by running the ``flow-failed-alert`` deployment, served by
the same process as the others, with the run's id. Same rule and scope (the flow run
id) as the hook: when both fire, the cooldown sends one message.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import flow, get_client

from reporting.alerts import dispatch_alerts, flow_run_alert
from wiring.runtime import get_runtime

AUTOMATION_NAME = "content-pipeline: flow run failed or crashed"
FAILURE_EVENTS = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}


@flow(name="flow-failed-alert", flow_run_name="alert-{flow_run_id}")
async def flow_failed_alert(flow_run_id: str) -> list[str]:
    """Raise the ``flow-failed`` alert of ``flow_run_id`` (a UUID, or the event's resource id
    ``prefect.flow-run.<uuid>``); returns the titles sent (empty inside the cooldown)."""
    run_id = UUID(flow_run_id.rsplit(".", 1)[-1])
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        flow_obj = await client.read_flow(run.flow_id)
    rt = get_runtime()
    alert = flow_run_alert(flow_obj.name, run.id, run.name, run.state)
    return [a.title for a in dispatch_alerts(rt.db, rt.settings, rt.secrets, [alert])]


def failure_automation(deployment_id: UUID) -> Any:
    """The Automation (not yet saved) that runs deployment ``deployment_id`` on each failed,
    crashed or timed-out flow run tagged ``content-pipeline``."""
    from prefect.automations import Automation, EventTrigger, Posture, RunDeployment  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    return Automation(
        name=AUTOMATION_NAME,
        description="Alerts through Apprise (APPRISE_URLS of the serving process) when a content-pipeline flow run "
        "fails or crashes, even when its process died before its own hooks could run.",
        trigger=EventTrigger(
            expect=FAILURE_EVENTS,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.content-pipeline"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id, parameters={"flow_run_id": "{{ event.resource.id }}"})],
    )


def ensure_failure_automation(deployment_id: UUID) -> Any:
    """Create the automation, or update the one of the same name; returns it as saved."""
    from prefect.automations import Automation  # noqa: PLC0415 - Prefect costs ~1.5 s to import: loaded only where a flow or task runs

    wanted = failure_automation(deployment_id)
    try:
        existing = Automation.read(name=AUTOMATION_NAME)
    except ValueError:
        existing = None
    if existing is None:
        return wanted.create()
    wanted.id = existing.id  # type: ignore[attr-defined]  # sync_compatible: a value here
    wanted.update()
    return Automation.read(id=existing.id)  # type: ignore[attr-defined]
