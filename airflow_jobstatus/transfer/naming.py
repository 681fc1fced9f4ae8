"""Where each output lands under the destination, and the checks that keep it there.

Layout (stable; downstream readers may rely on it)::

    <destination>/<service>/<job segment>/<output file name>
    <destination>/<service>/<job segment>/_manifest.json

* ``<service>`` is the service's stable name: ``daily``, ``wasabi_air``, ``symbl``, ``deepaffects``.
* ``<job segment>`` is the job id with every character outside ``A-Z a-z 0-9 . _ -`` replaced by
  ``_`` (Symbl's ``jobId:conversationId`` becomes ``jobId_conversationId``). Ids longer than 120
  characters keep their first 100 and a hash of the whole.
* ``<output file name>`` is `JobOutput.file_name`: the output's name plus the extension its format
  calls for (``summary`` in format ``txt`` is ``summary.txt``, although Daily keeps it under a key
  without extension). The source key never names the destination.

Nothing a service returns can move a write out of that folder: a job id or output name holding a
path separator, a ``..`` segment, an absolute path, a drive letter or a control character, and a
source key with a ``..`` segment, an absolute path or a control character, are refused with
`InvalidParameterError` before anything is written.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.models import JobOutput

__all__ = [
    "MANIFEST_NAME",
    "PlannedOutput",
    "check_source_key",
    "job_segment",
    "join_key",
    "output_file_name",
    "plan_outputs",
    "select_outputs",
]

MANIFEST_NAME = "_manifest.json"
MAX_SEGMENT = 120

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _refuse(what: str, value: str, why: str, hint: str | None = None) -> InvalidParameterError:
    return InvalidParameterError(
        f"{what} {value!r} refused: {why}",
        operation="transfer outputs",
        hint=hint
        or "Keys and names with '..', absolute paths or other escapes are never followed; "
        "nothing was written. Check the job's outputs at the service",
    )


def _escapes(value: str) -> str | None:
    """Why ``value`` could escape a folder if used as a path, or None."""
    if _CONTROL.search(value):
        return "it contains a control character"
    if value.startswith(("/", "\\")) or _DRIVE.match(value):
        return "it is an absolute path"
    if any(part == ".." for part in re.split(r"[/\\]", value)):
        return "it contains a '..' path segment"
    return None


def job_segment(job_id: str) -> str:
    """The job's folder name under ``<destination>/<service>/``."""
    if not isinstance(job_id, str) or not job_id.strip():
        raise InvalidParameterError(f"job_id must be a non-empty string, got {job_id!r}")
    why = _escapes(job_id)
    if why is None and ("/" in job_id or "\\" in job_id):
        why = "it contains a path separator"
    if why is None and job_id.strip(".") == "":
        why = "it is made of dots only"
    if why is not None:
        raise _refuse("job id", job_id, why, hint="Pass the id the service returned for the job")
    segment = _SAFE.sub("_", job_id.strip())
    if segment.startswith("."):
        segment = "_" + segment[1:]
    if len(segment) > MAX_SEGMENT:
        digest = hashlib.sha256(job_id.encode()).hexdigest()[:16]
        segment = f"{segment[:100]}-{digest}"
    return segment


def output_file_name(output: JobOutput) -> str:
    """The output's file name, after refusing names that are paths."""
    why = _escapes(output.name)
    if why is None and ("/" in output.name or "\\" in output.name):
        why = "it contains a path separator"
    if why is not None:
        raise _refuse(f"output name ({output.format})", output.name, why)
    name = output.file_name
    if name == MANIFEST_NAME:
        raise _refuse("output name", output.name, f"{MANIFEST_NAME} is reserved for the manifest")
    return name


def check_source_key(key: str, *, output: JobOutput | None = None) -> str:
    """Refuse a source object key that holds a ``..`` segment, is absolute or has control characters."""
    why = _escapes(key)
    if why is not None:
        what = (
            f"source key of output {output.name!r} ({output.format})" if output is not None else "source key"
        )
        raise _refuse(what, key, why)
    return key


def join_key(prefix: str, *segments: str) -> str:
    """``prefix/segment/...`` for object keys; every segment must be one plain path component."""
    for segment in segments:
        if (
            not segment
            or segment in (".", "..")
            or "/" in segment
            or "\\" in segment
            or _CONTROL.search(segment)
        ):
            raise _refuse("path segment", segment, "it is not a single plain name")
    base = prefix.strip("/")
    joined = "/".join(s for s in (base, *segments) if s)
    normalized = posixpath.normpath(joined)
    if normalized != joined or (base and not joined.startswith(base + "/")):
        raise _refuse("destination key", joined, "it would leave the destination prefix")
    return joined


@dataclass(frozen=True)
class PlannedOutput:
    """One output and the key, relative to the destination root, it will be written under."""

    output: JobOutput
    file_name: str
    relative_key: str


def plan_outputs(service: str, job_id: str, outputs: Sequence[JobOutput]) -> tuple[list[PlannedOutput], str]:
    """Every output's relative key and the manifest's; refuses unsafe names and collisions."""
    folder = (service, job_segment(job_id))
    planned: list[PlannedOutput] = []
    seen: dict[str, JobOutput] = {}
    for output in outputs:
        name = output_file_name(output)
        previous = seen.get(name.lower())
        if previous is not None:
            raise InvalidParameterError(
                f"outputs {previous.name!r} ({previous.format}) and {output.name!r} ({output.format}) "
                f"would both be written as {name!r}",
                operation="transfer outputs",
                hint="Select one of them with the 'outputs' parameter; nothing was written",
            )
        seen[name.lower()] = output
        planned.append(PlannedOutput(output, name, join_key("", *folder, name)))
    return planned, join_key("", *folder, MANIFEST_NAME)


def _norm(value: str) -> str:
    return value.strip().lower()


def select_outputs(outputs: Sequence[JobOutput], selectors: Iterable[str] | str | None) -> list[JobOutput]:
    """The outputs matching any selector: an output name, a format, or ``name.format`` / file name.

    ``None`` or an empty list selects everything. A selector that matches nothing is an error (a
    typo would otherwise deliver less than asked, silently). A string is split on commas.
    """
    if selectors is None:
        return list(outputs)
    if isinstance(selectors, str):
        selectors = [s for s in selectors.split(",") if s.strip()]
    wanted = [_norm(s) for s in selectors if isinstance(s, str) and s.strip()]
    if not wanted:
        return list(outputs)
    chosen: list[JobOutput] = []
    matched: set[str] = set()
    for output in outputs:
        keys = {
            _norm(output.name),
            _norm(output.format),
            _norm(f"{output.name}.{output.format}"),
            _norm(output.file_name),
        }
        hits = keys.intersection(wanted)
        if hits:
            matched.update(hits)
            chosen.append(output)
    missing = [s for s in wanted if s not in matched]
    if missing:
        available = ", ".join(sorted({f"{o.name}.{o.format}" for o in outputs})) or "none"
        raise InvalidParameterError(
            f"outputs filter {missing} matched no output of the job (available: {available})",
            operation="transfer outputs",
            hint="Filter by output name (e.g. 'transcript'), format (e.g. 'vtt') or both ('transcript.vtt')",
        )
    return chosen
