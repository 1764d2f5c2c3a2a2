"""Loopback servers, one module per provider protocol (tests/providers/servers/<name>.py,
each with its server and its contract ``CASE``), and what they share (``common``).

``cases()`` finds every module's ``CASE`` by convention: a new provider's test module is
picked up by the contract test without being listed anywhere. The names below are
re-exported for the tests that drive several servers at once.
"""

from __future__ import annotations

import importlib
import pkgutil

from tests.providers.servers.automatic1111 import A1111Server
from tests.providers.servers.civitai import CivitaiServer
from tests.providers.servers.common import ERROR_CODES, RETRY_AFTER_S, ContractCase, ProtocolServer, Reply, Request, black, image_for, photo, ratio_size
from tests.providers.servers.fal import FalServer
from tests.providers.servers.flux_studio import FluxStudioServer
from tests.providers.servers.huggingface import HuggingFaceServer
from tests.providers.servers.openai import OpenAIServer
from tests.providers.servers.picsum import PicsumServer
from tests.providers.servers.replicate import ReplicateServer
from tests.providers.servers.stability import StabilityServer, stability_size


def cases() -> dict[str, ContractCase]:
    """Every server module's ``CASE`` by provider name."""
    found: dict[str, ContractCase] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        case = getattr(module, "CASE", None)
        if isinstance(case, ContractCase):
            found[case.provider] = case
    return dict(sorted(found.items()))


__all__ = [
    "A1111Server",
    "CivitaiServer",
    "ContractCase",
    "ERROR_CODES",
    "FalServer",
    "FluxStudioServer",
    "HuggingFaceServer",
    "OpenAIServer",
    "PicsumServer",
    "ProtocolServer",
    "RETRY_AFTER_S",
    "ReplicateServer",
    "Reply",
    "Request",
    "StabilityServer",
    "black",
    "cases",
    "image_for",
    "photo",
    "ratio_size",
    "stability_size",
]
