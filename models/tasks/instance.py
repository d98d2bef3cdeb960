"""Instance segmentation: Mask R-CNN on our encoder + FPN (the two-stage detector of
models.tasks.detect_two_stage with torchvision's mask branch: RoIAlign 14x14, four 3x3 convs,
a transposed convolution and per-class mask logits), and the paste of predicted masks into a
label image."""

from __future__ import annotations

import numpy as np
import torch

from models.tasks.detect_two_stage import RCNN, build_two_stage


def build_mask_rcnn(num_classes: int, **options) -> RCNN:
    """Mask R-CNN on our encoder + FPN (options: the fields of :class:`TwoStageConfig`). Train
    mode needs targets with ``masks`` (n, H, W) besides boxes and labels; predictions carry soft
    ``masks`` (n, 1, H, W) in [0, 1]."""
    return build_two_stage(num_classes, masks=True, **options)


def masks_to_label_image(
    prediction: dict, shape: tuple[int, int], score_thresh: float = 0.5, mask_thresh: float = 0.5
) -> np.ndarray:
    """Instances above ``score_thresh`` as an int32 label image (1..n by falling score; a pixel
    claimed by several masks goes to the highest-scoring one)."""
    out = np.zeros(shape, np.int32)
    masks = prediction.get("masks")
    if masks is None or len(masks) == 0:
        return out
    scores = prediction["scores"].detach().cpu()
    order = torch.argsort(scores, descending=True)
    next_id = 1
    for i in order.tolist():
        if scores[i] < score_thresh:
            break
        m = masks[i].detach().cpu().numpy()
        m = (m[0] if m.ndim == 3 else m) > mask_thresh
        free = m & (out == 0)
        if free.any():
            out[free] = next_id
            next_id += 1
    return out
