"""The encoder contract every decoder and head relies on (as segmentation_models_pytorch's).

An encoder is an ``nn.Module`` whose ``forward(x)`` returns a :class:`FeatureList`: one feature
map per stage, from the highest resolution to the lowest. It states, per stage:

- ``out_channels``: the channels of that stage's map;
- ``strides``: the map's reduction relative to the input (a tuple per axis);
- ``receptive_fields``: the input extent (voxels per axis) one voxel of the map sees;

and, for the whole encoder, ``ndim`` (2 or 3 spatial axes), ``in_channels`` and
``returns_indices``: whether ``FeatureList.indices[i]`` holds the max-pooling indices used to go
from map ``i`` to map ``i + 1`` (so a decoder can max-unpool). Any head can sit on any encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.errors import InputError

Shape = tuple[int, ...]


class FeatureList(list):
    """A list of feature maps (highest resolution first) with the pooling ``indices``."""

    def __init__(self, maps: Sequence[torch.Tensor], indices: Sequence | None = None) -> None:
        super().__init__(maps)
        self.indices = list(indices) if indices is not None else [None] * len(maps)


class Encoder(nn.Module):
    """Base of the contract; see the module docstring."""

    ndim: int
    in_channels: int
    out_channels: list[int]
    strides: list[Shape]
    receptive_fields: list[Shape]
    returns_indices: bool = False

    @property
    def size_multiple(self) -> Shape:
        """Valid input sizes are multiples of the coarsest stride, per axis."""
        return self.strides[-1]

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse tensors with the wrong rank, channel count or a size the strides do not fit."""
        if x.dim() != self.ndim + 2:
            raise InputError(
                f"expected a {self.ndim + 2}D tensor (batch, channels, {self.ndim} spatial axes), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"input has {x.shape[1]} channel(s) but the network takes {self.in_channels}; "
                "give it raw data with that many channels"
            )
        spatial = tuple(x.shape[2:])
        multiple = self.size_multiple
        if any(s % m for s, m in zip(spatial, multiple, strict=True)):
            fixed = tuple(-(-s // m) * m for s, m in zip(spatial, multiple, strict=True))
            raise InputError(
                f"input spatial size {spatial} does not fit the network's stride: each axis must "
                f"be a multiple of {multiple} (e.g. pad to {fixed})"
            )
