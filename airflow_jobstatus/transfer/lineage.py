"""OpenLineage datasets and Airflow Assets for delivered outputs.

Dataset naming follows the OpenLineage conventions Airflow's providers use: S3 objects are
``namespace="s3://<bucket>", name="<key>"``; local files ``namespace="file://<host>",
name="<absolute path>"``; other object stores ``"<scheme>://<bucket>"``; HTTP sources (Daily's
download links, Symbl's API documents, DeepAffects' status endpoint)
``namespace="<scheme>://<host>[:port]", name="<path>"``.

OpenLineage is optional: without the ``apache-airflow-providers-openlineage`` package
`operator_lineage` returns None and nothing else changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LineageRecord", "asset_for", "operator_lineage"]

log = logging.getLogger(__name__)


@dataclass
class LineageRecord:
    """The datasets one run read and wrote."""

    inputs: list[tuple[str, str]] = field(default_factory=list)
    """(namespace, name) of each source read or checked."""
    outputs: list[tuple[str, str, int]] = field(default_factory=list)
    """(namespace, name, bytes) of each delivered object, the manifest included."""

    def add(self, source: tuple[str, str], target: tuple[str, str], size: int) -> None:
        if source not in self.inputs:
            self.inputs.append(source)
        self.outputs.append((target[0], target[1], size))


def operator_lineage(record: LineageRecord | None) -> Any:
    """An ``OperatorLineage`` with the run's input and output datasets, or None without OpenLineage."""
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        log.debug("the OpenLineage provider is not installed: no lineage reported")
        return None
    if record is None:
        return OperatorLineage()
    inputs = [Dataset(namespace=ns, name=name) for ns, name in record.inputs]
    outputs = []
    for ns, name, size in record.outputs:
        facets: dict[str, Any] = {
            "outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=None, size=size, fileCount=1)
        }
        outputs.append(OutputDataset(namespace=ns, name=name, outputFacets=facets))
    return OperatorLineage(inputs=inputs, outputs=outputs)


def asset_for(uri: str, *, extra: Mapping[str, Any] | None = None) -> Any:
    """An Airflow ``Asset`` for a delivered object or the destination root."""
    from airflow.sdk import Asset

    return Asset(uri=uri, extra=dict(extra or {}))
