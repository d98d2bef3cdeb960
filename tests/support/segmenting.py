"""Running the segmentation sub-plan (``workflows.run.segment_boundaries``) from tests with
fragment parameters, block shape and agglomeration options as keywords."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from pipeline.seg.watershed import FragmentParams
from workflows.run import segment_boundaries
from workflows.schema import AgglomerateStage, FragmentsStage, SegmentStage, Stages


def segment(
    boundaries_url: str,
    output_url: str,
    thresholds: Sequence[float],
    params: FragmentParams | None = None,
    block: Sequence[int] | None = None,
    context: Sequence[int] | None = None,
    client: Any = None,
    progress: bool = False,
    **agglomerate: Any,
) -> dict[str, Any]:
    fragments = asdict(params or FragmentParams())
    stages = Stages(
        fragments=FragmentsStage(**fragments, block=block, context=context),
        agglomerate=AgglomerateStage(**agglomerate),
        segment=SegmentStage(thresholds=list(thresholds)),
    )
    return segment_boundaries(boundaries_url, output_url, stages, client, progress)
