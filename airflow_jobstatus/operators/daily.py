"""`DailySubmitJobOperator`: submit a Daily batch-processor job and wait for it."""

from __future__ import annotations

from typing import Any, cast

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.daily import DailyHook, daily_submit_body
from airflow_jobstatus.operators.base import JobSubmitOperator, as_bool
from airflow_jobstatus.services import DAILY


class DailySubmitJobOperator(JobSubmitOperator):
    """Submit a Daily batch-processor job (``POST /batch-processor``) and, by default, wait for it.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job) and what it returns.

    :param preset: ``transcript``, ``summarize`` or ``soap-notes`` (templated).
    :param recording_id: a Daily recording to process (templated).
    :param uri: a media file URL to process (templated).
    :param transcript_uri: a WebVTT transcript URL, for ``summarize`` and ``soap-notes`` (templated).
        Exactly one of ``recording_id``, ``uri`` and ``transcript_uri``.
    :param language: the spoken language as a BCP-47 tag, e.g. ``fr`` (templated). Only for the
        ``transcript`` preset: Daily does not take it for the others, so it is refused for them.
    :param s3_key_template: the output files' name, Daily's required ``outParams.s3Config.
        s3KeyTemplate`` (templated). Outputs land at ``<domain>/<job id>/transcript/<template>.<ext>``
        (``summary``/``soap`` alike). At most 1024 characters of letters, digits and ``. / - _``,
        plus placeholders when ``use_replacement`` is on. Default ``{job_id}`` with
        ``use_replacement`` on, so every job has its own file names.
    :param use_replacement: Daily's ``useReplacement``: replace the placeholders ``{epoch_time}``,
        ``{domain_name}`` and ``{job_id}`` in ``s3_key_template``. Default: on when the template has
        placeholders. Placeholders with ``use_replacement=False`` are refused before submitting.
    :param delete_on_kill: delete the job when the task is killed or its ``timeout`` passes (Daily
        has no cancel; deleting removes the job and its outputs in Daily's storage). While deferred,
        a kill deletes only once the task instance is marked failed/skipped or cleared, never when
        the wait moved to another triggerer or the state cannot be read. Default False: the job
        keeps running and a retry resumes it.
    :param daily_conn_id: a ``daily`` connection. Default ``daily_default``.
    """

    spec = DAILY
    hook_class = DailyHook
    template_fields = ("preset", "recording_id", "uri", "transcript_uri", "language", "s3_key_template")

    def __init__(
        self,
        *,
        preset: str,
        recording_id: str | None = None,
        uri: str | None = None,
        transcript_uri: str | None = None,
        language: str | None = None,
        s3_key_template: str | None = None,
        use_replacement: bool | None = None,
        delete_on_kill: bool = False,
        daily_conn_id: str = DAILY.default_conn_id,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=daily_conn_id, **kwargs)
        if not isinstance(delete_on_kill, bool):
            raise InvalidParameterError(f"delete_on_kill must be True or False, got {delete_on_kill!r}")
        self.preset = preset
        self.recording_id = recording_id
        self.uri = uri
        self.transcript_uri = transcript_uri
        self.language = language
        self.s3_key_template = s3_key_template
        self.use_replacement = use_replacement
        self.delete_on_kill = delete_on_kill
        self.daily_conn_id = daily_conn_id
        self._check_literal_parameters()

    def _submission(self) -> tuple[dict[str, Any], Any]:
        kwargs: dict[str, Any] = {
            "preset": self.preset,
            "recording_id": self.recording_id or None,
            "uri": self.uri or None,
            "transcript_uri": self.transcript_uri or None,
            "language": self.language or None,
            "s3_key_template": self.s3_key_template or None,
            "use_replacement": as_bool(self.use_replacement),
        }
        return kwargs, daily_submit_body(**kwargs)

    def _delete(self, job_id: str) -> None:
        cast(DailyHook, self.hook).delete_job(job_id)
