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
        assert spec.load_hook() is hook  # the class the poll hub builds is the registered one
        made = spec.make_hook("some_conn")
        assert type(made) is hook and made.conn_id == "some_conn"


def test_only_services_that_can_delete_a_job_offer_delete() -> None:
    from airflow_jobstatus.exceptions import InvalidParameterError

    assert [s.name for s in SERVICES.values() if s.can_delete_jobs] == ["daily"]
    for spec in SERVICES.values():
        hook = spec.make_hook("c")
        if spec.can_delete_jobs:
            call = next(hook._delete("job-1"))  # the hook sends the delete
            assert (call.method, call.path) == ("DELETE", "/batch-processor/job-1")
            continue
        with pytest.raises(InvalidParameterError, match="cannot delete a job"):
            hook.delete_job("job-1")
