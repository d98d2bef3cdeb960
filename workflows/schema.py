"""The workflow file: input, output, model, stages with their parameters, and the cluster.

Every section forbids unknown keys, so a typo is an error that names its key path, not a
silently ignored setting.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from workflows.cluster_spec import ClusterSection, Strict

Triple = tuple[PositiveInt, PositiveInt, PositiveInt]  # a shape in voxels: every side >= 1
Margin = tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt]  # a context in voxels: >= 0
MergeThreshold = Annotated[float, Field(ge=0.0, le=1.0)]  # merge scores lie in [0, 1]


class SyntheticInput(Strict):
    shape: Triple = (64, 128, 128)
    seed: int = 0
    anisotropy: float = Field(1.0, ge=1.0)


class InputSpec(Strict):
    """``raw`` (EM to predict on), ``boundaries`` (skip prediction; with ``raw`` too, the EM
    still feeds correction and export) or ``synthetic``."""

    raw: str | None = None
    boundaries: str | None = None
    synthetic: SyntheticInput | None = None
    ground_truth: str | None = Field(None, description="neuron ids for VI / adapted Rand")

    @model_validator(mode="after")
    def _one_source(self) -> InputSpec:
        given = [k for k in ("raw", "boundaries", "synthetic") if getattr(self, k) is not None]
        if not given or (self.synthetic is not None and len(given) > 1):
            raise ValueError(
                "give input.raw (and/or input.boundaries) or input.synthetic"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class PredictStage(Strict):
    enabled: bool = True
    block: Triple | None = None
    patch: Triple | None = None
    overlap: float = Field(0.5, ge=0.0, lt=1.0)
    tta: bool = False
    dtype: Literal["uint8", "float16", "float32"] = "uint8"
    batch_size: int | None = Field(None, ge=1)
    chunks: Triple | None = None


MUTEX_FIELDS = {"method", "bias_short", "bias_long", "long_range_stride"}


class FragmentsStage(Strict):
    method: Literal["watershed", "affinity_watershed", "mutex"] = Field(
        "watershed",
        description="watershed of a boundary map (of 1 - mean of nearest-neighbour affinities), "
        "seeded watershed over the faces' affinities, or mutex watershed of long-range affinities",
    )
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    sigma_seeds: float = Field(2.0, ge=0.0)
    sigma_weights: float = Field(1.0, ge=0.0)
    alpha: float = Field(0.9, ge=0.0, le=1.0)
    min_size: int = Field(50, ge=0)
    mode: Literal["3d", "2d"] = "3d"
    bias_short: float = Field(0.5, gt=0.0, lt=1.0, description="mutex: nearest-neighbour bias")
    bias_long: float = Field(0.5, gt=0.0, lt=1.0, description="mutex: long-range bias")
    long_range_stride: int = Field(1, ge=1, description="mutex: long-range edges every k voxels")
    block: Triple | None = None
    context: Margin | None = None

    def hashed(self) -> dict:
        """What a run hashes: a watershed section as before the mutex options existed (so
        earlier runs resume), a mutex section with its own options only."""
        if self.method == "watershed":
            return self.model_dump(exclude=MUTEX_FIELDS)
        if self.method == "affinity_watershed":
            return self.model_dump(exclude=MUTEX_FIELDS - {"method"})
        return self.model_dump(include=MUTEX_FIELDS | {"block", "context"})


class GraphStage(Strict):
    bins: int = Field(32, ge=2)
    faces: Literal["auto", "affinity", "boundary"] = Field(
        "auto",
        description="value of a contact face: 1 - its affinity (affinity), the larger boundary "
        "value of its voxels (boundary), or affinity for affinities and boundary otherwise (auto)",
    )

    def hashed(self) -> dict:
        """What a run hashes: the bins alone at the default faces (so earlier runs resume)."""
        return self.model_dump(exclude={"faces"} if self.faces == "auto" else set())


class AgglomerateStage(Strict):
    scoring: str = Field("mean", pattern=r"^(mean|median|quantile:0?\.\d+|learned:.+)$")
    max_global_edges: int = Field(
        5_000_000, ge=0, description="above this many edges (0: always), two levels"
    )
    local_threshold: float = Field(0.5, gt=0.0, lt=1.0)


class SegmentStage(Strict):
    thresholds: list[MergeThreshold] = Field(default_factory=lambda: [0.7], min_length=1)
    pyramid: bool = Field(
        True, description="scale levels s1, s2, ... of the final segmentation (OME-Zarr)"
    )


class CorrectStage(Strict):
    """Merge/split error correction of one segmentation (``threshold``, default the first of
    ``segment.thresholds``): confident corrections become edits in the edit log, the rest a
    ranked candidate list for proofreaders."""

    enabled: bool = True
    model: str = Field("fib-correct-v1", description="shipped name or `correct-train` file")
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    merge_threshold: float | None = Field(None, gt=0.0, le=1.0)
    split_threshold: float | None = Field(None, gt=0.0, le=1.0)
    max_candidates: int = Field(10000, ge=0)
    edit_log: str | None = Field(
        None, description="SQLite edit log (local path); default <output>.edits/edit_log.sqlite"
    )


class ExportStage(Strict):
    """Neuroglancer precomputed: image, the final segmentation with meshes and skeletons, the
    candidates as point annotations, and a viewer state."""

    enabled: bool = True
    path: str | None = Field(None, description="export folder; default <output>.neuroglancer")
    meshes: bool = True
    skeletons: bool = True
    min_size: int = Field(1000, ge=0, description="segments under this many voxels: no objects")
    levels: int | None = Field(None, ge=1)


class Stages(Strict):
    predict: PredictStage = PredictStage()
    fragments: FragmentsStage = FragmentsStage()
    graph: GraphStage = GraphStage()
    agglomerate: AgglomerateStage = AgglomerateStage()
    segment: SegmentStage = SegmentStage()
    correct: CorrectStage = CorrectStage()
    export: ExportStage = ExportStage()


class Workflow(Strict):
    name: str = "petaseg"
    input: InputSpec
    output: str = Field(..., description="a Zarr container, e.g. out/run.zarr; stages write inside")
    model: str = "fib-boundary-v1"
    stages: Stages = Stages()
    cluster: ClusterSection = ClusterSection()

    @model_validator(mode="after")
    def _output_is_a_container(self) -> Workflow:
        if not self.output.rstrip("/").endswith(".zarr"):
            raise ValueError(
                f"output must be a Zarr container ending in .zarr, got {self.output!r}"
            )
        c = self.stages.correct
        if (
            c.enabled
            and c.threshold is not None
            and c.threshold not in self.stages.segment.thresholds
        ):
            raise ValueError(
                f"stages.correct.threshold {c.threshold} is not one of stages.segment.thresholds "
                f"{self.stages.segment.thresholds}"
            )
        if c.enabled and self.input.synthetic is None and self.input.raw is None:
            raise ValueError(
                "stages.correct needs the EM image: give input.raw beside input.boundaries, "
                "or set stages.correct.enabled: false"
            )
        if c.enabled and "://" in self.output and c.edit_log is None:
            raise ValueError(
                "the output is remote: set stages.correct.edit_log to a local path for the "
                "SQLite edit log (or stages.correct.enabled: false)"
            )
        return self

    def with_absolute_paths(self) -> Workflow:
        """The same workflow with every local path made absolute (relative ones are resolved
        from the current directory, as they were read), so what a run records (summaries, stage
        records, provenance) stays true when read from anywhere else."""
        s = self.stages
        return self.model_copy(
            update={
                "input": self.input.model_copy(
                    update={k: absolute(getattr(self.input, k)) for k in LOCAL_INPUTS}
                ),
                "output": absolute(self.output),
                "stages": s.model_copy(
                    update={
                        "correct": s.correct.model_copy(
                            update={"edit_log": absolute(s.correct.edit_log)}
                        ),
                        "export": s.export.model_copy(update={"path": absolute(s.export.path)}),
                    }
                ),
            }
        )


LOCAL_INPUTS = ("raw", "boundaries", "ground_truth")


def absolute(path: str | None) -> str | None:
    """A local path made absolute; URLs (``s3://``, ``precomputed://``...) and None unchanged."""
    if path is None or "://" in path:
        return path
    return os.path.abspath(os.path.expanduser(path))
