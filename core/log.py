"""One logger accessor: the Prefect run logger inside a flow or task run, else ``content_pipeline``."""

from __future__ import annotations

import logging


def get_logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        from prefect.exceptions import MissingContextError
        from prefect.logging import get_run_logger

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    except ImportError:  # pragma: no cover - prefect is a dependency
        pass
    return logging.getLogger("content_pipeline")
