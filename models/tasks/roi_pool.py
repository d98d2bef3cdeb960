"""RoI max pooling (Fast R-CNN) over FPN levels: the quantised alternative to torchvision's
MultiScaleRoIAlign, with the same call ``pool(features, boxes, image_shapes)``.

Each box is pooled from the level the FPN paper assigns it,
``k = floor(k0 + log2(sqrt(area) / s0))`` clamped to the available levels; RoI pooling
rounds the box to the feature grid and takes the maximum in each of ``output_size`` bins
(RoIAlign instead samples bilinearly without rounding, which is why it localises better).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops import box_area, roi_pool


class MultiScaleRoIPool(nn.Module):
    def __init__(
        self,
        featmap_names: Sequence[str],
        output_size: int | tuple[int, int],
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ) -> None:
        super().__init__()
        self.featmap_names = list(featmap_names)
        self.output_size = (
            (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        )
        self.canonical_scale, self.canonical_level = canonical_scale, canonical_level

    def forward(
        self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor], image_shapes
    ) -> torch.Tensor:
        feats = [x[n] for n in self.featmap_names]
        size = max(s[0] for s in image_shapes), max(s[1] for s in image_shapes)
        # the scale of a level is a power of two: feature size over (padded) image size
        scales = [2.0 ** round(math.log2(f.shape[-2] / size[0])) for f in feats]
        rois = torch.cat(
            [torch.cat([b.new_full((len(b), 1), i), b], 1) for i, b in enumerate(boxes)]
        )
        out = feats[0].new_zeros((len(rois), feats[0].shape[1], *self.output_size))
        if len(rois) == 0:
            return out
        lo = -math.log2(scales[0])
        k = torch.floor(
            self.canonical_level
            + torch.log2(box_area(rois[:, 1:]).clamp(min=1e-6).sqrt() / self.canonical_scale + 1e-6)
        )
        level = (k.clamp(lo, lo + len(feats) - 1) - lo).long()
        for i, (f, s) in enumerate(zip(feats, scales, strict=True)):
            idx = torch.where(level == i)[0]
            if len(idx):
                out[idx] = roi_pool(f, rois[idx], self.output_size, s).to(out.dtype)
        return out
