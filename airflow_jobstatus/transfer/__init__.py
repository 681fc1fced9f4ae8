"""Moving a finished job's outputs into downstream storage (the machinery of
`airflow_jobstatus.operators.transfer.JobOutputsToStorageOperator`).

* `naming`: the destination layout ``<destination>/<service>/<job>/<file>`` and the checks that
  keep every write inside it.
* `sources`: S3 objects, download links and API documents, read as bounded streams.
* `checksums`: the checksum a source offers, recomputed while the bytes pass.
* `sinks`: atomic writes to a local folder, S3 (including server-side and multipart copies) and
  any other ``ObjectStoragePath`` scheme.
* `engine`: check, deliver, verify, then write the manifest.
* `manifest`, `lineage`: the ``_manifest.json`` document; OpenLineage datasets and Assets.
"""

from airflow_jobstatus.transfer.engine import (
    IF_EXISTS,
    TransferError,
    TransferResult,
    VerificationError,
    deliver_outputs,
)
from airflow_jobstatus.transfer.naming import MANIFEST_NAME, plan_outputs, select_outputs

__all__ = [
    "IF_EXISTS",
    "MANIFEST_NAME",
    "TransferError",
    "TransferResult",
    "VerificationError",
    "deliver_outputs",
    "plan_outputs",
    "select_outputs",
]
