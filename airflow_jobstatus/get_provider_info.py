"""Provider registration read by Airflow's providers manager (entry point ``apache_airflow_provider``).

The connection forms are declared here (Airflow 3.2+ ``conn-fields`` and ``ui-field-behaviour``)
rather than through the deprecated hook methods, and are built from `services.py`.
"""

from __future__ import annotations

from typing import Any

from airflow_jobstatus import __version__
from airflow_jobstatus.services import SERVICES, SHARED_EXTRA_FIELDS, ServiceSpec

_STANDARD_FIELDS = ("host", "schema", "login", "password", "port")


def _conn_fields(spec: ServiceSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for f in (*spec.extra_fields, *SHARED_EXTRA_FIELDS):
        # Every setting is optional (the hooks fall back to the default): Airflow's form marks a field
        # required, and refuses to save it empty, unless its type admits null.
        schema: dict[str, Any] = {"type": [f.json_type, "null"], "default": f.default}
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.enum is not None:
            schema["enum"] = [*f.enum, None]
        fields[f.name] = {"label": f.label, "description": f.description, "schema": schema}
    fields.update(_webhook_fields(spec))
    return fields


def _webhook_fields(spec: ServiceSpec) -> dict[str, Any]:
    """Push completion's per-connection secret (README "Push completion"), a password-format field."""
    if spec.webhook is None:
        return {}
    scheme = spec.webhook.scheme
    return {
        scheme.extra: {
            "label": scheme.label,
            "description": scheme.description,
            "schema": {"type": ["string", "null"], "format": "password", "default": None},
        }
    }


def _connection_type(spec: ServiceSpec) -> dict[str, Any]:
    hidden = [name for name in _STANDARD_FIELDS if name not in spec.fields]
    placeholders = {name: f.placeholder for name, f in spec.fields.items()}
    placeholders.update({f.name: f.placeholder for f in (*spec.extra_fields, *SHARED_EXTRA_FIELDS)})
    placeholders.update({name: "only for push completion" for name in _webhook_fields(spec)})
    return {
        "connection-type": spec.conn_type,
        "hook-class-name": spec.hook_class,
        "hook-name": spec.display_name,
        "ui-field-behaviour": {
            "hidden-fields": hidden,
            "relabeling": {name: f.label for name, f in spec.fields.items()},
            "placeholders": placeholders,
        },
        "conn-fields": _conn_fields(spec),
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-jobstatus",
        "name": "Job status (Daily, Wasabi AiR, Symbl.ai, DeepAffects)",
        "description": "Submit, wait for and collect the outputs of asynchronous AI/media jobs.",
        "versions": [__version__],
        "connection-types": [_connection_type(spec) for spec in SERVICES.values()],
        "integrations": [
            {"integration-name": spec.display_name, "external-doc-url": spec.docs_url, "tags": ["service"]}
            for spec in SERVICES.values()
        ],
        "hooks": [
            {"integration-name": spec.display_name, "python-modules": [spec.hook_class.rsplit(".", 1)[0]]}
            for spec in SERVICES.values()
        ],
        "sensors": [
            {
                "integration-name": spec.display_name,
                "python-modules": [spec.hook_class.rsplit(".", 1)[0].replace(".hooks.", ".sensors.")],
            }
            for spec in SERVICES.values()
        ],
        "operators": [
            {
                "integration-name": spec.display_name,
                "python-modules": [
                    spec.hook_class.rsplit(".", 1)[0].replace(".hooks.", ".operators."),
                    "airflow_jobstatus.operators.transfer",
                ],
            }
            for spec in SERVICES.values()
        ],
        "triggers": [
            {"integration-name": spec.display_name, "python-modules": ["airflow_jobstatus.triggers.job"]}
            for spec in SERVICES.values()
        ],
    }
