"""A service's one submission, `SubmitRequest`: its fields are the hook's and operator's parameters."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pydantic
from pydantic.fields import FieldInfo

from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.common import redact_secrets


def _types_of(annotation: Any) -> set[Any]:
    """The plain types an annotation admits (``dict[str, Any] | list[str] | None`` -> dict, list, None)."""
    if annotation is None or annotation is type(None):
        return {type(None)}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types_of(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Annotated:
        return _types_of(typing.get_args(annotation)[0])
    return {origin or annotation}


def _from_text(value: Any, kinds: set[Any]) -> Any:
    """A rendered template gives text: turn it into the field's type where the text says so."""
    if not isinstance(value, str) or str in kinds:
        return value
    text = value.strip()
    if (dict in kinds or list in kinds) and text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return value
    if bool in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if int in kinds and text.lstrip("-").isdigit():
        return int(text)
    return value


R = typing.TypeVar("R", bound="SubmitRequest")


class SubmitRequest(pydantic.BaseModel):
    """A service's one submission: its fields are the hook's and operator's parameters.

    Subclasses declare fields with ``description`` (the operator's docs come from them), validate
    them with validators that raise ``ValueError`` naming the fix, and say in `call` which HTTP
    request submits the job and in `job_ref` what the response gives back as the job's reference.
    Text rendered from a template is turned into a field's type first (``"5"`` -> 5, JSON -> dict).
    """

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

    positional: ClassVar[str | None] = None
    """The field a hook's ``submit_job`` also takes as its first positional argument."""
    set_at_send: ClassVar[Mapping[str, Callable[[], Any]]] = types.MappingProxyType({})
    """Fields the operator fills in itself when it sends the job (not operator parameters) -> a new value."""
    required_at_send: ClassVar[Mapping[str, str]] = types.MappingProxyType({})
    """Fields that may be unset while the request is checked but not when it is sent -> the fix."""

    @classmethod
    def parameters(cls) -> dict[str, FieldInfo]:
        """The fields an operator takes as parameters (all but `set_at_send`)."""
        return {k: v for k, v in cls.model_fields.items() if k not in cls.set_at_send}

    @pydantic.model_validator(mode="before")
    @classmethod
    def _rendered_text(cls, data: Any) -> Any:
        """Rendered text becomes the field's type; an empty value of an optional field is unset."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        values = {}
        for key, value in data.items():
            kinds = _types_of(fields[key].annotation) if key in fields else set()
            if type(None) in kinds and value == "":
                value = None
            values[key] = _from_text(value, kinds) if kinds else value
        return values

    def exactly_one(self, *names: str) -> str:
        """The one of ``names`` that is set: `Invalid` when none or several are."""
        given = [name for name in names if getattr(self, name) is not None]
        if len(given) != 1:
            raise Invalid(
                f"exactly one source is needed, got {len(given)} ({', '.join(given) or 'none'})",
                hint=f"Pass exactly one of {', '.join(names[:-1])} or {names[-1]}",
            )
        return given[0]

    def only_for(self, allowed: bool, what: str, *names: str) -> None:
        """`Invalid` when any of ``names`` is set but the request is not ``what`` (``allowed`` False)."""
        if not allowed and (given := [name for name in names if getattr(self, name) is not None]):
            verb = "applies" if len(given) == 1 else "apply"
            raise Invalid(
                f"{', '.join(given)} {verb} only to {what}",
                hint=f"Remove {', '.join(given)}, or make the request {what}",
            )

    @pydantic.model_validator(mode="after")
    def _sendable(self) -> Any:
        """Every value goes out as strict JSON (httpx refuses NaN, bytes and objects at send time)."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                raise ValueError(
                    f"{name} must be text, a finite number, true/false, or a list or dict of those, "
                    f"got {type(value).__name__} {value!r:.80}"
                ) from None
        return self

    shape_hints: ClassVar[Mapping[str, str]] = types.MappingProxyType({})
    """A field -> the fix named when its declared type refuses a value (e.g. a nested shape)."""

    @staticmethod
    def _where(loc: tuple[int | str, ...], data: Any) -> str:
        """An error's place as the user wrote it (``channel_metadata[0].speaker``): the field, then the
        list indexes and dict keys found along the given value (pydantic's union tags are not)."""
        where = ""
        for part in loc:
            if isinstance(data, list) and isinstance(part, int) and part < len(data):
                where, data = f"{where}[{part}]", data[part]
            elif isinstance(data, dict) and (part in data or part == loc[-1]):  # or the missing key
                where, data = f"{where}.{part}", data.get(part)
        return where.removeprefix(".")

    @classmethod
    def of(cls: type[R], service: str, values: Mapping[str, Any]) -> R:
        """The validated request; `InvalidParameterError` naming each wrong field otherwise."""
        from airflow_jobstatus.exceptions import InvalidParameterError  # imports Airflow: not at load time

        try:
            return cls.model_validate(dict(values))
        except pydantic.ValidationError as exc:
            problems, hints = [], []
            given = {key: _from_text(value, {dict, list}) for key, value in values.items()}  # rendered JSON
            for error in exc.errors():
                where = cls._where(error["loc"], given)
                found = (error.get("ctx") or {}).get("error")
                if (
                    error["type"] in ("dict_type", "list_type")
                    and isinstance(error["input"], str)
                    and where in cls.model_fields  # a field's own value, not a nested one
                ):
                    message = f"{where} must be a {error['type'][:4]}, got text {error['input']!r:.80}"
                    hints.append(TEXT_HINT)
                elif error["msg"].partition(" ")[2].startswith("should "):  # "Input/String/List should ..."
                    got = redact_secrets(error["input"])  # e.g. a source's SecretKey
                    message = f"{where} {error['msg'].partition(' ')[2]}, got {got!r:.80}"
                else:
                    message = error["msg"].removeprefix("Value error, ")
                    message = message if message.startswith(where) else f"{where}: {message}"
                if isinstance(found, Invalid) and found.hint:
                    hints.append(found.hint)
                elif error["loc"] and str(error["loc"][0]) in cls.shape_hints:
                    hints.append(cls.shape_hints[str(error["loc"][0])])
                if message not in problems:
                    problems.append(message)
            raise InvalidParameterError(
                "; ".join(problems[:5]),
                service=service,
                operation="submit_job",
                hint=hints[0] if hints else None,
            ) from None

    def call(self) -> Call:
        """The HTTP request that submits this job (method, path, query, body, response model)."""
        raise NotImplementedError

    def job_ref(self, response: Any) -> str:
        """The job's reference in the submit response (what `get_job` takes)."""
        raise NotImplementedError


TEXT_HINT = (
    "Pass a dict or list; a Jinja template renders text, so render JSON (e.g. "
    "'{{ ti.xcom_pull(...) | tojson }}') or create the DAG with render_template_as_native_obj=True"
)


class Invalid(ValueError):
    """Raised by a `SubmitRequest` validator: what is wrong, and the fix (the error's hint)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
