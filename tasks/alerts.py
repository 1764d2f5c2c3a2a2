"""Step 6 of a run: evaluate the alert rules over the recorded attempts and send what fires."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reporting.alerts import dispatch_alerts, evaluate_rules
from wiring.runtime import Runtime


@task(name="alerts", cache_policy=NO_CACHE)
def alerts_task(rt: Runtime) -> list[str]:
    """Evaluate the rules (reporting.alerts) and send the alerts through Apprise; returns their titles."""
    raised = dispatch_alerts(rt.db, rt.settings, rt.secrets, evaluate_rules(rt.db, rt.settings, rt.budget))
    return [a.title for a in raised]
