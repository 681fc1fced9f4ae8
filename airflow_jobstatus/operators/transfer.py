"""`JobOutputsToStorageOperator`: move a finished job's outputs into your storage.

Give it a job (its id, or the `JobStatus` a sensor or submit operator returned) and a destination
(``s3://bucket/prefix``, ``file:///folder``, an absolute path, or any ``ObjectStoragePath``).
Each output lands at::

    <destination>/<service>/<job id, sanitized>/<output name>.<format extension>

next to a ``_manifest.json`` written last (see `airflow_jobstatus.transfer`). The task returns the
manifest as XCom.

Guarantees: bounded memory whatever the size (sources are read in 1 MiB chunks; an S3
destination holds at most 160 MiB of upload parts for all outputs together, see `S3Sink`); S3 to
S3 within one store (same endpoint, same credentials) is a server-side copy, multipart above
5 GiB, with no byte through the worker; every output is verified (size, and the checksum the
source offers, else a SHA-256 computed on the way) before it is committed; no partial object ever
appears under a final name; a rerun skips outputs already delivered identically; names from the
service can never leave the destination folder.

Example::

    wait = DailyJobSensor(task_id="wait", job_id=submitted, daily_conn_id="daily_default")
    deliver = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id="daily_default",
        job_id=wait.output,  # the JobStatus JSON, or an id
        destination="s3://analytics/transcripts",
        destination_conn_id="aws_default",
        outputs=["transcript.vtt", "summary"],
    )
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook, BaseOperator

from airflow_jobstatus.exceptions import (
    InvalidParameterError,
    JobFailedError,
    JobNotFinishedError,
    MalformedResponseError,
)
from airflow_jobstatus.models import ApiDocument, DownloadLink, InlineDocument, JobOutput, JobStatus, S3Object
from airflow_jobstatus.services import BY_CONN_TYPE, ServiceSpec
from airflow_jobstatus.transfer.engine import IF_EXISTS, TransferResult, deliver_outputs
from airflow_jobstatus.transfer.lineage import LineageRecord, asset_for, operator_lineage
from airflow_jobstatus.transfer.naming import plan_outputs, select_outputs
from airflow_jobstatus.transfer.s3 import S3Access
from airflow_jobstatus.transfer.sinks import delivery_owner, open_sink, parse_destination
from airflow_jobstatus.transfer.sources import DocumentSource, LinkSource, S3Source, Source

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_jobstatus.hooks.base import JobServiceHook

__all__ = ["JobOutputsToStorageOperator", "parse_job_reference"]


def parse_job_reference(value: Any) -> tuple[str, str | None]:
    """``(job id, service or None)`` from an id, a `JobStatus`, or its JSON (dict or string).

    A rendered template of a dict XCom (``"{{ ti.xcom_pull('wait') }}"``) is the dict's Python
    repr, not JSON: both are accepted. Only the id and the service are taken; the job's status and
    outputs are always read fresh from the service.
    """
    if isinstance(value, JobStatus):
        return value.job_id, value.service.value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError, RecursionError, MemoryError):
                    raise InvalidParameterError(
                        f"job_id looks like a JobStatus but is neither JSON nor a Python dict: {text[:80]!r}",
                        operation="transfer outputs",
                        hint="Pass the sensor's XCom itself (e.g. job_id=sensor.output) or the job id",
                    ) from None
        elif text:
            return text, None
    if isinstance(value, Mapping):
        try:
            status = JobStatus.model_validate(dict(value))
        except Exception:
            raise InvalidParameterError(
                "job_id is a mapping but not a JobStatus (it needs at least 'service', 'job_id' and 'state')",
                operation="transfer outputs",
            ) from None
        return status.job_id, status.service.value
    raise InvalidParameterError(
        f"job_id must be a job id, a JobStatus or its JSON, got {type(value).__name__} {value!r}",
        operation="transfer outputs",
    )


def _static(value: Any) -> bool:
    return not (isinstance(value, str) and ("{{" in value or "{%" in value))


class JobOutputsToStorageOperator(BaseOperator):
    """Copy a finished job's outputs to ``destination``: streaming, verified, atomic, idempotent.

    :param job_conn_id: a connection of type ``daily``, ``wasabi_air``, ``symbl`` or
        ``deepaffects``; its type chooses the service.
    :param job_id: the job's id (Symbl: ``"jobId:conversationId"``), or the `JobStatus` a job
        sensor or submit operator returned (a dict, its JSON, or ``sensor.output``). Templated.
    :param destination: ``s3://bucket/prefix``, ``file:///abs/folder``, an absolute folder, or any
        URI / ``ObjectStoragePath`` Airflow's object storage reaches. Templated.
    :param destination_conn_id: connection for the destination (S3: an AWS connection; default
        ``aws_default``). A ``s3://conn_id@bucket/...`` URI names it too.
    :param source_aws_conn_id: the AWS (S3-compatible) connection that reads outputs kept in your
        bucket: Daily's ``s3Config`` bucket (``output_storage: customer``), Wasabi AiR's destination
        bucket (read at the endpoint the output records). Unset: ``aws_default`` for those. Daily
        outputs its access-link endpoint does not serve (``soap``, ``concept``) are read from their
        ``s3Config`` with this connection only when it is given; without it the task fails before
        writing anything, naming the output and its bucket.
    :param outputs: only these outputs: names (``transcript``), formats (``vtt``) or both
        (``transcript.vtt``); a list or a comma-separated string. Default: every output.
    :param if_exists: ``skip_identical`` (default: identical outputs are skipped, different ones
        replaced), ``overwrite`` (always write), ``fail`` (a different object at a destination name
        fails the task before anything is written; identical ones are skipped, so retries work).
    :param max_concurrency: outputs transferred at the same time (default 4). Memory does not grow
        with it: uploads to S3 share one 160 MiB budget of parts.

    Outlets: when ``outlets`` is not given and ``destination`` is not templated, the task's outlet
    is an Asset for the destination root (`destination_asset`), so downstream DAGs can be scheduled
    on deliveries; each event's ``extra`` names the job, the manifest and the delivered objects.
    An ``AssetAlias`` among the outlets receives one Asset per delivered object and the manifest.
    """

    template_fields: Sequence[str] = (
        "job_id",
        "destination",
        "outputs",
        "job_conn_id",
        "destination_conn_id",
        "source_aws_conn_id",
    )
    template_fields_renderers = {"job_id": "json"}
    ui_color = "#dff2e4"

    def __init__(
        self,
        *,
        job_conn_id: str,
        job_id: Any,
        destination: Any,
        destination_conn_id: str | None = None,
        source_aws_conn_id: str | None = None,
        outputs: Sequence[str] | str | None = None,
        if_exists: str = "skip_identical",
        max_concurrency: int = 4,
        **kwargs: Any,
    ) -> None:
        if if_exists not in IF_EXISTS:
            raise InvalidParameterError(
                f"if_exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}",
                operation="transfer outputs",
            )
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1:
            raise InvalidParameterError(
                f"max_concurrency must be a positive integer, got {max_concurrency!r}",
                operation="transfer outputs",
            )
        if "outlets" not in kwargs and _static(destination):
            asset = self.destination_asset(destination)
            if asset is not None:
                kwargs["outlets"] = [asset]
        super().__init__(**kwargs)
        self.job_conn_id = job_conn_id
        self.job_id = job_id
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.source_aws_conn_id = source_aws_conn_id
        self.outputs = outputs
        self.if_exists = if_exists
        self.max_concurrency = max_concurrency
        self._lineage: LineageRecord | None = None

    @staticmethod
    def destination_asset(destination: Any) -> Any:
        """The Asset of a destination root (``s3://bucket/prefix``, ``file:///folder``), or None.

        Use the same call in a downstream DAG's ``schedule`` to run it on every delivery.
        """
        try:
            return asset_for(parse_destination(destination).uri)
        except Exception:
            return None

    # ------------------------------------------------------------------ pieces

    def _service(self) -> tuple[ServiceSpec, JobServiceHook]:
        from airflow.sdk.module_loading import import_string

        conn = BaseHook.get_connection(self.job_conn_id)
        spec = BY_CONN_TYPE.get(str(conn.conn_type or ""))
        if spec is None:
            raise InvalidParameterError(
                f"connection {self.job_conn_id!r} has type {conn.conn_type!r}, not one of the job services "
                f"({', '.join(sorted(BY_CONN_TYPE))})",
                operation="transfer outputs",
                hint="Pass the connection of the service that ran the job as job_conn_id",
            )
        hook: JobServiceHook = import_string(spec.hook_class)(self.job_conn_id)
        return spec, hook

    def _finished_job(self, spec: ServiceSpec, hook: JobServiceHook) -> JobStatus:
        job_id, service = parse_job_reference(self.job_id)
        if service is not None and service != spec.name:
            raise InvalidParameterError(
                f"job_id is a {service} job but connection {self.job_conn_id!r} is a {spec.conn_type} connection",
                operation="transfer outputs",
                job_id=job_id,
            )
        status = hook.get_job(job_id)
        if status.failed:
            raise JobFailedError(
                f"the job ended {status.state} (service status {status.raw_status!r}): it has no outputs to move"
                + (f"; the service says: {status.error}" if status.error else ""),
                service=spec.display_name,
                operation="transfer outputs",
                job_id=status.job_id,
            )
        if not status.succeeded:
            raise JobNotFinishedError(
                f"the job is {status.state} (service status {status.raw_status!r}), not succeeded: "
                "its outputs cannot be moved yet",
                service=spec.display_name,
                operation="transfer outputs",
                job_id=status.job_id,
            )
        return status

    def _sources(
        self,
        spec: ServiceSpec,
        hook: JobServiceHook,
        status: JobStatus,
        outputs: Sequence[JobOutput],
        s3_access: Any,
        http: Any,
    ) -> list[Source]:
        sources: list[Source] = []
        base_url = hook.get_client().base_url
        base = urlsplit(base_url)
        origin = f"{base.scheme}://{base.netloc}"
        for output in outputs:
            location = output.location
            if isinstance(location, S3Object):
                conn_id = self.source_aws_conn_id or "aws_default"
                sources.append(S3Source(output, location, s3_access(conn_id)))
            elif isinstance(location, DownloadLink):
                if location.url:
                    sources.append(LinkSource(output, location.url, http, job_id=status.job_id))
                elif location.s3 is not None and self.source_aws_conn_id:
                    # no link (Daily links only transcripts and summaries): read the object itself
                    sources.append(S3Source(output, location.s3, s3_access(self.source_aws_conn_id)))
                elif location.s3 is not None:
                    raise InvalidParameterError(
                        f"the service gave no download link for output {output.name!r} ({output.format}); "
                        f"it can only be read from {location.s3.uri}",
                        service=spec.display_name,
                        operation="transfer outputs",
                        job_id=status.job_id,
                        hint=f"Pass source_aws_conn_id with an AWS connection that can read bucket "
                        f"{location.s3.bucket!r}, or leave {output.name!r} out with outputs=...",
                    )
                else:
                    raise MalformedResponseError(
                        f"no download link was returned for output {output.name!r} ({output.format})",
                        service=spec.display_name,
                        operation="transfer outputs",
                        job_id=status.job_id,
                    )
            elif isinstance(location, ApiDocument):
                path = base.path.rstrip("/") + location.path
                sources.append(
                    DocumentSource(
                        output,
                        kind="api",
                        display=origin + path,
                        lineage=(origin, path),
                        fetch=functools.partial(hook.get_document, output),
                    )
                )
            elif isinstance(location, InlineDocument):
                sources.append(self._inline_source(spec, status, output, location, origin, base.path))
            else:  # pragma: no cover - the location union is closed
                raise InvalidParameterError(f"unsupported output location {location!r}")
        return sources

    def _inline_source(
        self,
        spec: ServiceSpec,
        status: JobStatus,
        output: JobOutput,
        location: InlineDocument,
        origin: str,
        base_path: str,
    ) -> DocumentSource:
        path = base_path.rstrip("/") + spec.result_path

        def fetch() -> bytes:
            try:
                document = location.resolve(status.raw)
            except (LookupError, ValueError) as exc:
                raise MalformedResponseError(
                    f"the result of output {output.name!r} is missing from the job's status: {exc}",
                    service=spec.display_name,
                    operation="transfer outputs",
                    job_id=status.job_id,
                ) from None
            return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()

        return DocumentSource(
            output,
            kind="inline",
            display=f"{origin}{path}?request_id={status.job_id}#{location.pointer}",
            lineage=(origin, f"{path}/{status.job_id}{location.pointer}"),
            fetch=fetch,
        )

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> dict[str, Any]:
        import httpx

        from airflow_jobstatus.http.client import USER_AGENT

        spec, hook = self._service()
        status = self._finished_job(spec, hook)
        available = hook.get_outputs(status)  # resolves fresh download links
        if not available:
            raise InvalidParameterError(
                "the job succeeded but lists no outputs",
                service=spec.display_name,
                operation="transfer outputs",
                job_id=status.job_id,
                hint=spec.no_outputs_hint,
            )
        selected = select_outputs(available, self.outputs)
        planned, manifest_rel = plan_outputs(spec.name, status.job_id, selected)
        destination = parse_destination(self.destination, self.destination_conn_id)
        accesses: dict[str | None, S3Access] = {}

        def s3_access(conn_id: str | None) -> S3Access:
            if conn_id not in accesses:
                accesses[conn_id] = S3Access(conn_id, max_pool_connections=max(16, 4 * self.max_concurrency))
            return accesses[conn_id]

        ti = context.get("ti") if hasattr(context, "get") else None
        # every try of this task instance shares the owner: a retry aborts what a killed try left
        owner = delivery_owner(ti.dag_id, ti.task_id, ti.run_id, ti.map_index) if ti is not None else None
        sink = open_sink(destination, s3_access=lambda c: s3_access(c or "aws_default"), owner=owner)
        settings = hook.get_client().settings
        with httpx.Client(
            verify=settings.verify_tls,
            timeout=httpx.Timeout(settings.request_timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=self.max_concurrency),
        ) as http:
            sources = self._sources(spec, hook, status, [p.output for p in planned], s3_access, http)
            self.log.info(
                "delivering %d output(s) of %s job %s to %s",
                len(planned),
                spec.display_name,
                status.job_id,
                sink.uri(manifest_rel.rsplit("/", 1)[0]),
            )
            result = deliver_outputs(
                service=spec.name,
                job_id=status.job_id,
                sink=sink,
                planned=list(zip(planned, sources, strict=True)),
                manifest_rel=manifest_rel,
                if_exists=self.if_exists,
                max_concurrency=self.max_concurrency,
                logger=self.log,
                service_label=spec.display_name,
            )
        self._lineage = result.lineage
        self._emit_asset_events(context, result)
        summary = result.manifest["summary"]
        self.log.info(
            "done: %d written, %d skipped, %d bytes, %d bytes through the worker; manifest %s",
            summary["written"],
            summary["skipped"],
            summary["bytes"],
            summary["bytes_through_worker"],
            result.manifest["manifest"],
        )
        return result.manifest

    def _emit_asset_events(self, context: Context, result: TransferResult) -> None:
        from airflow.sdk import Asset, AssetAlias

        events = context.get("outlet_events") if hasattr(context, "get") else None
        if events is None or not self.outlets:
            return
        manifest = result.manifest
        extra = {
            "service": manifest["service"],
            "job_id": manifest["job_id"],
            "manifest": manifest["manifest"],
            "written": manifest["summary"]["written"],
            "skipped": manifest["summary"]["skipped"],
            "outputs": [entry["destination"] for entry in manifest["outputs"]],
        }
        for outlet in self.outlets:
            if isinstance(outlet, AssetAlias):
                for uri in [*extra["outputs"], manifest["manifest"]]:
                    events[outlet].add(Asset(uri=uri), extra=extra)
            elif isinstance(outlet, Asset):
                events[outlet].extra = extra

    # ------------------------------------------------------------------ lineage

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Input and output datasets of every object this run delivered or confirmed (OpenLineage)."""
        return operator_lineage(self._lineage)
