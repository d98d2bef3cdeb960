"""The input step: the EM (and ground truth) the workflow names, or a synthetic volume written
beside the outputs; every given input is opened before any work."""

from __future__ import annotations

from typing import Any

from pipeline.errors import InputError, PetasegError
from pipeline.io.volume import open_volume
from pipeline.synthetic.volume import make_volume
from workflows.schema import InputSpec
from workflows.steps.segmentation import voxels
from workflows.steps.step import RunContext, Step


def check_input(spec: InputSpec) -> None:
    """Open every given input now, so a missing path or a ground truth of another shape is
    refused before hours of prediction, not at the evaluation after them."""
    given = {k: getattr(spec, k) for k in ("raw", "boundaries", "ground_truth")}
    shapes = {k: opened_shape(f"input.{k}", v) for k, v in given.items() if v}
    if len(set(shapes.values())) > 1:
        raise InputError(
            "the workflow's inputs have different shapes: "
            + ", ".join(f"input.{k} {given[k]} {s}" for k, s in shapes.items())
            + "; give volumes of one grid"
        )


def opened_shape(key: str, url: str) -> tuple[int, ...]:
    """The shape of the volume at ``url``; a problem opening it names the workflow key first."""
    try:
        return tuple(open_volume(url).shape)
    except PetasegError as e:
        raise InputError(f"{key}: {e}") from None


def read_input(spec: InputSpec, output: str) -> dict[str, Any]:
    """The input step's record for ``spec``; a synthetic volume is written to ``<output>/input``."""
    if spec.synthetic is not None:
        s = spec.synthetic
        vol = make_volume(tuple(s.shape), seed=s.seed, anisotropy=s.anisotropy)
        written = vol.write_zarr(f"{output}/input", exist_ok=True)
        return {
            "raw": written["raw"],
            "boundaries": None,
            "ground_truth": written["labels"],
            "voxels": vol.raw.size,
        }
    check_input(spec)
    return {
        "raw": spec.raw,
        "boundaries": spec.boundaries,
        "ground_truth": spec.ground_truth,
        "voxels": voxels(spec.raw or spec.boundaries),
    }


def input_config(ctx: RunContext) -> dict[str, Any]:
    return ctx.values["input"].model_dump()


def input_step(ctx: RunContext) -> dict[str, Any]:
    return read_input(ctx.values["input"], ctx.values["output"])


def synthetic_output(ctx: RunContext) -> list[str]:
    """A synthetic input is written into ``<output>/input``; given inputs are only read."""
    return [f"{ctx.values['output']}/input"] if ctx.values["input"].synthetic else []


INPUT = Step(
    "input",
    ("input", "output"),
    ("raw", "boundaries", "ground_truth"),
    input_step,
    config=input_config,
    writes=synthetic_output,
)
