"""Provider registration: valid against Airflow's schema, and each form says what it needs."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_jobstatus.get_provider_info import get_provider_info
from airflow_jobstatus.services import SERVICES

pytestmark = pytest.mark.unit


def test_provider_info_validates_against_airflow_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_and_package_name():
    points = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_jobstatus")
    ]
    assert [ep.value for ep in points] == ["airflow_jobstatus.get_provider_info:get_provider_info"]
    assert get_provider_info()["package-name"] == "airflow-jobstatus"


@pytest.mark.parametrize("spec", SERVICES.values(), ids=lambda s: s.conn_type)
def test_each_form_labels_and_hides_fields(spec):
    info = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}[spec.conn_type]
    behaviour = info["ui-field-behaviour"]
    for name in ("host", "login", "password", "schema", "port"):
        assert (name in behaviour["hidden-fields"]) == (name not in spec.fields)
    for name in spec.fields:
        assert behaviour["relabeling"][name]
        assert behaviour["placeholders"][name]
    for name, field in info["conn-fields"].items():
        assert field["label"] and field["description"] and "type" in field["schema"]
        assert behaviour["placeholders"][name]
    assert {"request_timeout", "max_retries", "max_requests_per_second", "verify_tls"} <= set(
        info["conn-fields"]
    )


def test_hooks_declare_what_the_providers_manager_requires():
    import importlib

    for spec in SERVICES.values():
        module, name = spec.hook_class.rsplit(".", 1)
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == spec.conn_type
        assert hook.default_conn_name == spec.default_conn_id
        assert hook.conn_name_attr == f"{spec.conn_type}_conn_id"
        assert hook.hook_name == spec.display_name
