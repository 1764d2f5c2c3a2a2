"""Flow-run state hooks shared by the flows."""

from __future__ import annotations

from typing import Any

from domain.log import get_logger
from reporting.alerts import dispatch_alerts, flow_run_alert
from wiring.runtime import get_runtime


def flow_failure_hook(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` / ``on_crashed`` hook: raise the ``flow-failed`` alert.

    Never raises: a broken alert path must not hide the run's own failure.
    """
    try:
        rt = get_runtime()
        alert = flow_run_alert(getattr(flow, "name", str(flow)), flow_run.id, getattr(flow_run, "name", None), state)
        dispatch_alerts(rt.db, rt.settings, rt.secrets, [alert])
    except Exception:
        get_logger().exception("could not raise the flow-failed alert")
