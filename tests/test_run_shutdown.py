"""A run's tasks all end before its resources close (issue 19): a task failing (a database
locked mid-run) must not let the flow body go on while other submitted tasks still run,
else ``image_run`` closes the provider chain under their calls ("client has been closed")."""

from __future__ import annotations

import threading

import pytest
from prefect import flow, task

from flows.run import each_result

pytestmark = pytest.mark.usefixtures("prefect_server")

#: How long (seconds) the slow task waits to be released by the flow body; the body must
#: never release it, since it may only go on once the task has ended.
HOLD_S = 8.0

released_early: list[bool] = []
go = threading.Event()


@task
def fails_at_once() -> int:
    raise RuntimeError("database is locked")


@task
def still_running() -> int:
    released_early.append(go.wait(HOLD_S))
    return 1


@flow
def body() -> str:
    futures = [still_running.submit(), fails_at_once.submit()]
    try:
        each_result(futures, lambda result: None)
    except RuntimeError as exc:
        go.set()  # what image_run does at this point: close what the tasks use
        return str(exc)
    return "no error"


def test_a_failed_task_waits_for_the_others_before_the_error_goes_on() -> None:
    assert body() == "database is locked"
    # the body went on only after the slow task had ended on its own (not released by the body)
    assert released_early == [False]
