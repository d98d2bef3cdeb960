"""Fold eval-mode batch norms into the convolutions before them (inference only).

At inference a batch norm is a fixed per-channel affine map, so ``BN(conv(x))`` is one
convolution with rescaled weights and a shifted bias: the same function, one layer and one
activation tensor fewer (less time and memory; values equal up to float rounding). Only the
unambiguous case is folded: a convolution immediately followed by a batch norm inside an
``nn.Sequential`` (the convolution's output then feeds nothing else). Works on a copy the
caller owns; other networks pass through unchanged.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_batch_norms(net: nn.Module) -> int:
    """Fold in place (``net`` must be in eval mode); returns how many norms were folded."""
    if net.training:
        raise ValueError("fold_batch_norms needs a network in eval mode")
    folded = 0
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, norm = seq._modules[a], seq._modules[b]
            if (
                isinstance(conv, CONVS)
                and isinstance(norm, NORMS)
                and norm.track_running_stats
                and norm.running_mean is not None
                and conv.out_channels == norm.num_features
            ):
                seq._modules[a] = fuse_conv_bn_eval(conv, norm)
                seq._modules[b] = nn.Identity()
                folded += 1
    return folded
