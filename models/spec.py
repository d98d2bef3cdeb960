"""What an inference stage needs to know about a model, in one JSON-able record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from models.errors import ConfigError

OUTPUTS = ("boundary", "affinity", "logits")


@dataclass(frozen=True)
class ModelSpec:
    """Geometry and meaning of a network's input and output.

    - ``size_multiple``: valid input sizes are multiples of this per axis; tiles must also start
      at multiples of it (relative to each other) for the max-pooling grid to line up, which
      makes tiled predictions equal the whole-volume one.
    - ``receptive_field``: input voxels per axis one output voxel can see. Outputs are the same
      shape as inputs ('same' padding); a voxel closer than ``context`` to a tile border sees
      padding, so read tiles grown by ``context`` and keep their centre.
    - ``normalization``: apply ``(raw - mean) / std`` to raw intensities (in the raw dtype's units).
    - ``output``: "boundary" (1 channel, 1 = boundary), "affinity" (one channel per offset,
      1 = same object), or "logits"; ``activation`` turns the network's output into that.
    """

    ndim: int
    in_channels: int
    out_channels: int
    output: str
    size_multiple: tuple[int, ...]
    receptive_field: tuple[int, ...]
    normalization: dict = field(default_factory=lambda: {"mean": 0.0, "std": 1.0})
    offsets: tuple[tuple[int, ...], ...] | None = None
    activation: str = "sigmoid"

    @property
    def context(self) -> tuple[int, ...]:
        """Margin per axis to read around a tile: half the receptive field, rounded up to a
        multiple of ``size_multiple`` so grown tiles stay on the pooling grid."""
        return tuple(
            -(-(r // 2) // m) * m
            for r, m in zip(self.receptive_field, self.size_multiple, strict=True)
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["context"] = list(self.context)
        return d


def check_output(output: str, out_channels: int, offsets) -> tuple[tuple[int, ...], ...] | None:
    """Validate the output kind against the channel count; returns offsets as tuples."""
    if output not in OUTPUTS:
        raise ConfigError(f"output={output!r} is unknown; use one of {OUTPUTS}")
    if output == "affinity":
        if not offsets or len(offsets) != out_channels:
            raise ConfigError(
                f"an affinity model needs one offset per output channel: out_channels="
                f"{out_channels}, offsets={offsets}"
            )
        return tuple(tuple(int(v) for v in o) for o in offsets)
    if output == "boundary" and out_channels != 1:
        raise ConfigError(f"a boundary model has 1 output channel, not {out_channels}")
    return None


def check_normalization(normalization) -> dict:
    if normalization is None:
        return {"mean": 0.0, "std": 1.0}
    try:
        mean, std = float(normalization["mean"]), float(normalization["std"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"normalization={normalization!r} must be a mapping with numbers 'mean' and 'std'"
        ) from None
    if not std > 0:
        raise ConfigError(f"normalization std={std} must be positive")
    return {"mean": mean, "std": std}
