"""Choices in the UI's Run form: template and category enums built when deployments are built.

Why here and not in the flow signatures: the template folder comes from the settings
(``templates_dir``), and nothing may read settings at import time; an ``Enum`` built at
import would also freeze the choices of a long-lived worker. So the flows take plain
strings (checked again at run start: ``TemplateLibrary.get`` / ``only_categories``
raise TemplateError naming the value and the folder), and ``with_choices`` adds the
JSON-schema ``enum`` of the templates and categories present when the deployment is
built (``content-pipeline serve`` at start). The Prefect UI renders an ``enum`` as a
select box, and with ``enforce_parameter_schema`` the server rejects any other value
(HTTP 409) before a flow run exists.
"""

from __future__ import annotations

from typing import Any

from domain.templates import TemplateLibrary


def template_choices(library: TemplateLibrary) -> list[str]:
    """Every template name, sorted."""
    return sorted(t.name for group in library.templates.values() for t in group)


def _string_schemas(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``{"type": "string"}`` schemas inside ``prop`` (directly, in anyOf, or as array items)."""
    found: list[dict[str, Any]] = []
    for option in prop.get("anyOf", [prop]):
        if option.get("type") == "string":
            found.append(option)
        elif option.get("type") == "array" and isinstance(option.get("items"), dict):
            found.extend(_string_schemas(option["items"]))
    return found


#: ISO 8601 calendar date. The server's JSON-schema check ignores ``format: date``, so a
#: pattern makes it refuse ``21/11/2026`` before a flow run exists.
ISO_DATE_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def add_choices(schema: dict[str, Any], library: TemplateLibrary) -> dict[str, Any]:
    """Add ``enum`` to the ``template`` and ``categories`` properties of a parameter
    JSON schema (``{"properties": {...}}``) and the ISO pattern to every ``format: date``
    string; return ``schema`` (changed in place)."""
    for prop in schema.get("properties", {}).values():
        for string_schema in _string_schemas(prop):
            if string_schema.get("format") == "date":
                string_schema["pattern"] = ISO_DATE_PATTERN
    choices = {"template": template_choices(library), "categories": list(library.categories), "category": list(library.categories)}
    for name, values in choices.items():
        prop = schema.get("properties", {}).get(name)
        if prop is None:
            continue
        for string_schema in _string_schemas(prop):
            string_schema["enum"] = values
    return schema


def with_choices(deployment: Any, library: TemplateLibrary) -> Any:
    """``deployment`` (a RunnerDeployment) with template/category enums in its parameter
    schema and the schema enforced by the server; returns the same object."""
    schema = deployment._parameter_openapi_schema  # the schema Prefect sends with the deployment
    add_choices({"properties": schema.properties}, library)  # properties is changed in place
    deployment.enforce_parameter_schema = True
    return deployment
