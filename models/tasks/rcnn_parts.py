"""The parts of a two-stage detector, each made from a :class:`TwoStageConfig` by a small
function, as torchvision composes its GeneralizedRCNN: a transform (normalise and pad, never
resize), a backbone (encoder + FPN), a region proposal network (anchors + RPN head) and RoI heads
(RoIAlign or RoI max pooling, two-layer MLP, box predictor [, mask branch]).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from models.encoders import build_encoder
from models.errors import ConfigError
from models.tasks.detection import DetectorConfig
from models.tasks.fpn import EncoderFPN
from models.tasks.roi_pool import MultiScaleRoIPool

DEFAULT_ANCHORS = ((8, 12), (16, 24), (32, 48), (64, 128))
ROI_OPS = ("align", "pool")


@dataclass
class TwoStageConfig(DetectorConfig):
    """Faster R-CNN (``masks=False``) or Mask R-CNN options: FPN levels (indices into the encoder
    maps; one more "pool" map is added), anchor sizes (one tuple per FPN map) and aspect ratios,
    RPN proposals kept before / after NMS (training, testing) and sampled per image, RoI
    samples per image, the box head's width (``representation``), the RoI op and its level
    assignment scale."""

    fpn_levels: tuple[int, ...] = (2, 3, 4)
    anchor_sizes: tuple[tuple[int, ...], ...] = DEFAULT_ANCHORS
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    masks: bool = False
    rpn_pre_nms: tuple[int, int] = (1000, 600)
    rpn_post_nms: tuple[int, int] = (500, 300)
    rpn_batch: int = 256
    roi_batch: int = 128
    representation: int = 256
    roi_canonical_scale: int = 64
    roi_op: str = "align"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fpn_levels = tuple(self.fpn_levels)
        self.anchor_sizes = tuple(tuple(int(v) for v in s) for s in self.anchor_sizes)
        self.aspect_ratios = tuple(self.aspect_ratios)
        self.rpn_pre_nms, self.rpn_post_nms = tuple(self.rpn_pre_nms), tuple(self.rpn_post_nms)


class NoResizeTransform(GeneralizedRCNNTransform):
    """GeneralizedRCNNTransform that normalises and pads to ``size_divisible`` but never
    rescales: a detector trained on 4 nm pixels must see 4 nm pixels at inference too."""

    def resize(self, image, target=None):
        return image, target


def make_backbone(config: TwoStageConfig) -> EncoderFPN:
    """The config's encoder with an FPN over ``fpn_levels`` plus a max-pooled extra map."""
    encoder = build_encoder(config.encoder, config.in_channels, ndim=2)
    return EncoderFPN(encoder, config.fpn_levels, config.fpn_channels)


def make_rpn(config: TwoStageConfig, backbone: nn.Module) -> RegionProposalNetwork:
    """Anchors of ``anchor_sizes`` x ``aspect_ratios`` on every backbone map and the RPN head
    that scores and refines them; ``backbone`` needs ``names``, ``strides``, ``out_channels``."""
    n_maps = len(backbone.names)
    sizes = config.anchor_sizes
    if len(sizes) != n_maps:
        raise ConfigError(
            f"anchor_sizes has {len(sizes)} entries but the backbone returns {n_maps} "
            f"feature maps {backbone.names} (strides {backbone.strides}); give one tuple of "
            "sizes per map"
        )
    if len({len(s) for s in sizes}) != 1:
        raise ConfigError("every feature map needs the same number of anchor sizes")
    ratios = (tuple(float(a) for a in config.aspect_ratios),) * n_maps
    anchors = AnchorGenerator(sizes, ratios)
    head = RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0])
    pre, post = config.rpn_pre_nms, config.rpn_post_nms
    return RegionProposalNetwork(
        anchors,
        head,
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=config.rpn_batch,
        positive_fraction=0.5,
        pre_nms_top_n={"training": pre[0], "testing": pre[1]},
        post_nms_top_n={"training": post[0], "testing": post[1]},
        nms_thresh=0.7,
    )


def make_roi_pool(config: TwoStageConfig, names: list[str], size: int) -> nn.Module:
    """RoIAlign (``roi_op="align"``) or RoI max pooling (``"pool"``) over the maps ``names``."""
    if config.roi_op not in ROI_OPS:
        raise ConfigError(
            f"roi_op={config.roi_op!r}; use 'align' (RoIAlign) or 'pool' (RoI pooling)"
        )
    scale = config.roi_canonical_scale
    if config.roi_op == "pool":
        return MultiScaleRoIPool(names, size, canonical_scale=scale)
    return MultiScaleRoIAlign(names, size, 2, canonical_scale=scale)


def make_roi_heads(config: TwoStageConfig, backbone: nn.Module) -> RoIHeads:
    """Box classification and regression on 7x7 RoI features of the FPN maps (not the extra
    pooled one); with ``masks`` also torchvision's mask branch on 14x14 RoI features."""
    names = backbone.names[: len(config.fpn_levels)]
    box_pool = make_roi_pool(config, names, 7)
    channels, width = backbone.out_channels, config.representation
    heads = RoIHeads(
        box_pool,
        TwoMLPHead(channels * 49, width),
        FastRCNNPredictor(width, config.num_classes + 1),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=config.roi_batch,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=config.score_thresh,
        nms_thresh=0.5,
        detections_per_img=config.detections_per_img,
    )
    if config.masks:
        heads.mask_roi_pool = make_roi_pool(config, names, 14)
        heads.mask_head = MaskRCNNHeads(channels, (64, 64, 64, 64), 1)
        heads.mask_predictor = MaskRCNNPredictor(64, 64, config.num_classes + 1)
    return heads


def make_transform(config: TwoStageConfig, backbone: nn.Module) -> NoResizeTransform:
    """Normalise with the config's statistics and pad to the backbone's ``size_divisible``."""
    norm, c = config.normalization, config.in_channels
    return NoResizeTransform(
        min_size=1,
        max_size=1 << 16,
        image_mean=[norm["mean"]] * c,
        image_std=[norm["std"]] * c,
        size_divisible=backbone.size_divisible,
    )
