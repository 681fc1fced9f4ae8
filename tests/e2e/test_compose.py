"""docker-compose.yaml, validated without Docker (no Docker engine on our machines).

Each check is a function that returns the problems it finds, so the same check runs on the real file
(no problems allowed) and on a broken copy (`test_each_check_catches_a_broken_file`: every check must
report the breakage it exists for). The checks:

* the file parses, and the services the README's docker-compose section lists exist (both ways);
* each Airflow service runs one of the Airflow commands the e2e tier runs (`AIRFLOW_COMMANDS`), and
  every one of those components is deployed;
* the image's Airflow version satisfies pyproject's ``apache-airflow`` requirement (and its Python,
  if the tag pins one, ``requires-python``); the Dockerfile's base tag equals the compose image tag;
* every ``AIRFLOW_CONN_*`` is connection JSON of a provider type or the object store's (``aws``),
  its extra accepted by the provider's settings parser, its hosts pointing at compose services; every
  connection id the example DAGs use is defined;
* long-running services have health checks; ``depends_on`` names real services and conditions;
* CeleryExecutor with a Redis broker and a PostgreSQL result backend, example_dags/ as dags folder,
  two triggerers, published ports on 127.0.0.1 only.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from airflow_jobstatus.exceptions import JobStatusError
from airflow_jobstatus.get_provider_info import get_provider_info
from airflow_jobstatus.http.settings import HttpSettings
from tests.e2e.airflow_stack import AIRFLOW_COMMANDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11
    import tomli as tomllib

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
README = REPO / "README.md"
PYPROJECT = REPO / "pyproject.toml"
EXAMPLE_DAGS = REPO / "example_dags"
README_SECTION = "## Local deployment with docker-compose"
OBJECT_STORE_CONN_TYPES = frozenset({"aws"})
OFFICIAL_IMAGE = "apache/airflow"
ONE_SHOT_CONDITION = "service_completed_successfully"
DEPENDS_ON_CONDITIONS = frozenset({"service_started", "service_healthy", ONE_SHOT_CONDITION})
Compose = dict[str, Any]


# ------------------------------------------------------------------------------------------ reading


def load_compose(text: str | None = None) -> Compose:
    data = yaml.safe_load(COMPOSE.read_text() if text is None else text)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "no services mapping"
    return data


def resolve(value: str) -> str:
    """Compose interpolation with every variable unset: ``${X:-default}`` -> default, ``$$`` -> ``$``."""
    value = value.replace("$$", "\0")  # an escaped dollar is never a variable
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", "", value)
    return value.replace("\0", "$")


def argv(command: Any) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): resolve(str(v)) for k, v in env.items()}


def airflow_services(compose: Compose) -> dict[str, dict[str, Any]]:
    """Services that run an Airflow component: ``airflow-*`` with the image's own entrypoint."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if name.startswith("airflow-") and "entrypoint" not in svc
    }


def one_shot_services(compose: Compose) -> set[str]:
    """Services that run once and exit: no health check needed. Those others wait for to *finish*
    (airflow-init, minio-init), and those restarted only on failure (jobstatus-push-setup)."""
    waited_for = {
        dep
        for svc in compose["services"].values()
        for dep, rule in (svc.get("depends_on") or {}).items()
        if isinstance(rule, dict) and rule.get("condition") == ONE_SHOT_CONDITION
    }
    return waited_for | {
        name for name, svc in compose["services"].items() if svc.get("restart") == "on-failure"
    }


def image_tag(image: str) -> tuple[str, str]:
    name, _, tag = resolve(image).rpartition(":")
    return name, tag


def dockerfile_base(text: str | None = None) -> str:
    text = DOCKERFILE.read_text() if text is None else text
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases, "the Dockerfile has no FROM line"
    return bases[-1]


def readme_services(text: str | None = None) -> list[str]:
    """The service names the README's docker-compose section lists: the backticked names heading its bullets."""
    text = README.read_text() if text is None else text
    start = text.find(README_SECTION)
    assert start >= 0, f"README has no '{README_SECTION}' section"
    end = text.find("\n## ", start + len(README_SECTION))
    section = text[start : end if end > 0 else len(text)]
    heads = re.findall(r"^- (`[^:]*`):", section, flags=re.MULTILINE)  # "- `a`, `b`: what they do"
    return [name for head in heads for name in re.findall(r"`([a-z0-9-]+)`", head)]


def example_dag_conn_ids() -> set[str]:
    """Connection ids the example DAGs name: ``*_conn_id="..."`` and ``*_conn_id`` param defaults."""
    ids: set[str] = set()
    for path in sorted(EXAMPLE_DAGS.glob("*.py")):
        text = path.read_text()
        ids.update(re.findall(r"_conn_id=\"([a-z0-9_]+)\"", text))
        ids.update(re.findall(r"_conn_id\": Param\(\"([a-z0-9_]+)\"", text))
    return ids


# ------------------------------------------------------------------------------------------ checks


def check_readme_services(compose: Compose, readme: str | None = None) -> list[str]:
    listed = readme_services(readme)
    services = compose["services"]
    problems = [
        f"README lists `{name}`, which is not a compose service" for name in listed if name not in services
    ]
    problems += [
        f"compose service {name} is missing from the README" for name in services if name not in listed
    ]
    return problems


def check_airflow_commands(compose: Compose) -> list[str]:
    known = {command: component for component, command in AIRFLOW_COMMANDS.items()}
    problems: list[str] = []
    deployed: set[str] = set()
    for name, svc in airflow_services(compose).items():
        command = tuple(argv(svc.get("command")))
        if command not in known:
            problems.append(f"{name} runs 'airflow {' '.join(command)}', not a command the e2e tier runs")
        else:
            deployed.add(known[command])
    problems += [f"no service runs the e2e component {c!r}" for c in AIRFLOW_COMMANDS if c not in deployed]
    triggerers = [n for n, s in airflow_services(compose).items() if argv(s.get("command")) == ["triggerer"]]
    if len(triggerers) != 2:
        problems.append(f"expected two triggerers, found {triggerers}")
    return problems


def check_versions(compose: Compose, dockerfile: str | None = None) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    airflow_spec = next(
        SpecifierSet(dep.removeprefix("apache-airflow"))
        for dep in project["dependencies"]
        if re.match(r"apache-airflow[<>=!~ ]", dep)
    )
    base_name, base_tag = image_tag(dockerfile_base(dockerfile))
    problems: list[str] = []
    if base_name != OFFICIAL_IMAGE:
        problems.append(f"the Dockerfile builds on {base_name}, not the official {OFFICIAL_IMAGE} image")
    match = re.fullmatch(r"(\d+\.\d+\.\d+)(?:-python(\d+\.\d+))?", base_tag)
    if match is None:
        return [*problems, f"the base tag {base_tag!r} names no Airflow version"]
    if Version(match[1]) not in airflow_spec:
        problems.append(f"image Airflow {match[1]} does not satisfy apache-airflow{airflow_spec}")
    if match[2] and Version(match[2]) not in SpecifierSet(project["requires-python"]):
        problems.append(
            f"image Python {match[2]} does not satisfy requires-python {project['requires-python']}"
        )
    for name, svc in airflow_services(compose).items():
        if image_tag(svc["image"])[1] != base_tag:
            problems.append(
                f"{name} image tag {image_tag(svc['image'])[1]!r} != Dockerfile base tag {base_tag!r}"
            )
        if not svc.get("build"):
            problems.append(f"{name} is not built from this repository (no build:)")
    return problems


def check_connections(compose: Compose) -> list[str]:
    provider_types = {c["connection-type"] for c in get_provider_info()["connection-types"]}
    problems: list[str] = []
    needed = example_dag_conn_ids()
    for name, svc in compose["services"].items():
        defined = {
            k.removeprefix("AIRFLOW_CONN_").lower() for k in environment(svc) if k.startswith("AIRFLOW_CONN_")
        }
        if name in airflow_services(compose):
            problems += [
                f"{name} lacks connection {cid!r}, which the example DAGs use" for cid in needed - defined
            ]
        for key, raw in environment(svc).items():
            if not key.startswith("AIRFLOW_CONN_"):
                continue
            where = f"{name}: {key}"
            try:
                conn = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{where} is not JSON: {exc}")
                continue
            conn_type = conn.get("conn_type")
            extra = conn.get("extra") or {}
            if conn_type in provider_types:
                try:
                    settings = HttpSettings.from_extra(extra, conn_type=conn_type)
                except JobStatusError as exc:
                    problems.append(f"{where}: extra refused by the provider: {exc}")
                    continue
                unknown = set(extra) - set(get_field_names(conn_type))
                if unknown:
                    problems.append(
                        f"{where}: extra has settings the provider does not know: {sorted(unknown)}"
                    )
                host = conn.get("host") or ""
                problems += check_url(compose, where, host)
                if host.startswith("http://") and not settings.allow_http_links:
                    problems.append(f"{where}: an http:// emulator host needs allow_http_links")
                if not conn.get("password"):
                    problems.append(f"{where}: no credential")
                if "s3_endpoint_url" in extra:
                    problems += check_url(compose, where, extra["s3_endpoint_url"])
            elif conn_type in OBJECT_STORE_CONN_TYPES:
                problems += check_url(compose, where, extra.get("endpoint_url", ""))
            else:
                problems.append(
                    f"{where}: conn_type {conn_type!r} is neither a provider type nor an object store"
                )
    return problems


def get_field_names(conn_type: str) -> list[str]:
    info = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}[conn_type]
    return list(info["conn-fields"])


def check_url(compose: Compose, where: str, url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in compose["services"]:
        return [f"{where}: {url!r} does not point at a compose service"]
    return []


def check_health(compose: Compose) -> list[str]:
    one_shot = one_shot_services(compose)
    problems: list[str] = []
    for name, svc in compose["services"].items():
        test = (svc.get("healthcheck") or {}).get("test")
        if name not in one_shot and not test:
            problems.append(f"long-running service {name} has no health check")
        for dep, rule in (svc.get("depends_on") or {}).items():
            if dep not in compose["services"]:
                problems.append(f"{name} depends on unknown service {dep}")
            condition = rule.get("condition") if isinstance(rule, dict) else None
            if condition not in DEPENDS_ON_CONDITIONS:
                problems.append(f"{name} -> {dep}: condition {condition!r}")
            if condition == "service_healthy" and not (compose["services"].get(dep) or {}).get("healthcheck"):
                problems.append(f"{name} waits for {dep} to be healthy, but {dep} has no health check")
    return problems


def check_deployment(compose: Compose) -> list[str]:
    problems: list[str] = []
    for name, svc in airflow_services(compose).items():
        env = environment(svc)
        if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
            problems.append(f"{name}: executor {env.get('AIRFLOW__CORE__EXECUTOR')!r}, not CeleryExecutor")
        if urlsplit(env.get("AIRFLOW__CELERY__BROKER_URL", "")).hostname != "redis":
            problems.append(f"{name}: the Celery broker is not the redis service")
        backend = env.get("AIRFLOW__CELERY__RESULT_BACKEND", "")
        if not backend.startswith("db+postgresql") or urlsplit(backend).hostname != "postgres":
            problems.append(f"{name}: the Celery result backend is not the postgres service")
        mounts = [resolve(str(volume)).split(":")[:2] for volume in svc.get("volumes", [])]
        if ["./example_dags", "/opt/airflow/dags"] not in mounts:
            problems.append(f"{name}: example_dags/ is not mounted as /opt/airflow/dags")
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"{name} publishes {port} beyond 127.0.0.1")
    if not any("8080" in str(p) for p in compose["services"].get("airflow-apiserver", {}).get("ports", [])):
        problems.append("the api-server port is not published")
    emulator = argv(compose["services"].get("emulator", {}).get("command"))
    if emulator[:3] != ["python", "-m", "jobstatus_emulator"] or "--s3-endpoint" not in emulator:
        problems.append(f"the emulator service does not run the emulator with an S3 endpoint: {emulator}")
    return problems


CHECKS: dict[str, Callable[[Compose], list[str]]] = {
    "readme": check_readme_services,
    "commands": check_airflow_commands,
    "versions": check_versions,
    "connections": check_connections,
    "health": check_health,
    "deployment": check_deployment,
}


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", list(CHECKS))
def test_compose_file(name: str) -> None:
    problems = CHECKS[name](load_compose())
    assert not problems, "\n".join(problems)


def _set(path: list[str], value: Any) -> Callable[[Compose], None]:
    def mutate(compose: Compose) -> None:
        node = compose
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _drop(path: list[str]) -> Callable[[Compose], None]:
    def mutate(compose: Compose) -> None:
        node = compose
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _break_conn(compose: Compose) -> None:
    env = compose["services"]["airflow-worker"]["environment"]
    env["AIRFLOW_CONN_DAILY_DEFAULT"] = env["AIRFLOW_CONN_DAILY_DEFAULT"].replace(
        '"max_requests_per_second": 20', '"max_requests_per_second": "fast"'
    )


WORKER_ENV = ["services", "airflow-worker", "environment"]
BREAKAGES: dict[str, tuple[str, Callable[[Compose], None]]] = {
    "service the README lists is gone": ("readme", _drop(["services", "minio-init"])),
    "unknown Airflow command": (
        "commands",
        _set(["services", "airflow-scheduler", "command"], "scheduler --pid x"),
    ),
    "no dag-processor": ("commands", _drop(["services", "airflow-dag-processor"])),
    "one triggerer": ("commands", _drop(["services", "airflow-triggerer-2"])),
    "Airflow 2 image": (
        "versions",
        _set(["services", "airflow-worker", "image"], "airflow-jobstatus:2.10.5"),
    ),
    "not built from the repo": ("versions", _drop(["services", "airflow-worker", "build"])),
    "connection is not JSON": ("connections", _set([*WORKER_ENV, "AIRFLOW_CONN_SYMBL_DEFAULT"], "symbl://x")),
    "unknown conn type": (
        "connections",
        _set([*WORKER_ENV, "AIRFLOW_CONN_SYMBL_DEFAULT"], '{"conn_type": "smybl", "password": "x"}'),
    ),
    "extra the parser refuses": ("connections", _break_conn),
    "host not a compose service": (
        "connections",
        _set(
            [*WORKER_ENV, "AIRFLOW_CONN_DEEPAFFECTS_DEFAULT"],
            '{"conn_type": "deepaffects", "host": "http://emulatr:8080/deepaffects", "password": "k",'
            ' "extra": {"allow_http_links": true}}',
        ),
    ),
    "an example DAG connection missing": ("connections", _drop([*WORKER_ENV, "AIRFLOW_CONN_WASABI_S3"])),
    "no health check": ("health", _drop(["services", "airflow-triggerer-1", "healthcheck"])),
    "depends on a typo": (
        "health",
        _set(["services", "emulator", "depends_on"], {"minio-inti": {"condition": ONE_SHOT_CONDITION}}),
    ),
    "LocalExecutor": ("deployment", _set([*WORKER_ENV, "AIRFLOW__CORE__EXECUTOR"], "LocalExecutor")),
    "port on every interface": (
        "deployment",
        _set(["services", "airflow-apiserver", "ports"], ["8080:8080"]),
    ),
    "dags not mounted": ("deployment", _set(["services", "airflow-worker", "volumes"], [])),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_each_check_catches_a_broken_file(breakage: str) -> None:
    check, mutate = BREAKAGES[breakage]
    assert not CHECKS[check](load_compose()), "the real file must pass first"
    broken = copy.deepcopy(load_compose())
    mutate(broken)
    assert CHECKS[check](broken), f"check {check!r} missed: {breakage}"


def test_checks_catch_a_broken_dockerfile_and_readme() -> None:
    compose = load_compose()
    assert check_versions(compose, "FROM apache/airflow:2.10.5\n")
    assert check_versions(compose, "FROM apache/airflow:3.3.2-python3.9\n")  # requires-python >=3.10
    assert check_versions(compose, "FROM someone/airflow:3.3.2\n")
    section = README.read_text()
    assert check_readme_services(compose, section.replace("- `emulator`", "- `emulater`"))


def test_compose_interpolation_defaults() -> None:
    """The resolver the checks use reads compose's ``${VAR:-default}`` the way compose does with VAR unset."""
    assert resolve("${AIRFLOW_JOBSTATUS_IMAGE:-airflow-jobstatus:3.3.2}") == "airflow-jobstatus:3.3.2"
    assert resolve('"$${HOSTNAME}" ${UNSET}') == '"${HOSTNAME}" '
