"""``content-pipeline budget``: the operator's side of the budget ledger
(generation/budget.py). ``budget ack`` acknowledges the settlements a provider reported
above their reservation (the most the call can cost), which hold every paid call until then.
"""

from __future__ import annotations

import typer

from cli.common import console, load_settings

budget_app = typer.Typer(help="The budget ledger: overruns to acknowledge.", no_args_is_help=True)


@budget_app.command("ack")
def budget_ack() -> None:
    """Acknowledge every settlement above its reservation (listed); paid calls go ahead again."""
    load_settings()
    from wiring.runtime import get_runtime  # noqa: PLC0415 - the command line's start-up: loaded only by the commands that need it

    entries = get_runtime().budget.acknowledge_overruns()
    if not entries:
        console.print("no overrun to acknowledge: paid calls are not held", highlight=False)
        return
    for entry in entries:
        console.print(f"acknowledged entry {entry.id}: {entry.reason}", highlight=False, soft_wrap=True)
    console.print(f"{len(entries)} overrun(s) acknowledged: paid calls go ahead again", highlight=False)
