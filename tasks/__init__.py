"""The Prefect task layer: one thin ``@task`` per step of a run, with its name, retries,
tags and caching policy, over the libraries that do the work. Each task receives the
process's resources (wiring.runtime.Runtime) from the flow that calls it.

Caching is off (``NO_CACHE``) everywhere: exactly-once comes from the claims and
idempotency keys of storage/ledger.py, not from Prefect's cache."""
