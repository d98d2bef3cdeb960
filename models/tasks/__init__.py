"""The 2D task architectures, all on the encoders of models.encoders: semantic segmentation
(U-Net / FCN), the sliding-window patch classifier, classification + localization, single-shot
grid detection, two-stage detection and Mask R-CNN composed from injected parts, the FPN
backbone, RoI pooling, and selective-search proposals. Their training, data, metrics and
prediction live in models.train2d."""

from models.tasks.detect_grid import GridConfig, GridDetector, build_grid_detector, fit_anchors
from models.tasks.detect_two_stage import RCNN, build_two_stage, rcnn_from_config
from models.tasks.detection import DetectorConfig, check_images, check_targets
from models.tasks.fpn import DETECTION_ENCODER, EncoderFPN
from models.tasks.instance import build_mask_rcnn, masks_to_label_image
from models.tasks.localize import Localizer
from models.tasks.proposals import selective_search
from models.tasks.rcnn_parts import (
    NoResizeTransform,
    TwoStageConfig,
    make_backbone,
    make_roi_heads,
    make_rpn,
    make_transform,
)
from models.tasks.roi_pool import MultiScaleRoIPool
from models.tasks.semantic import SemanticNet, valid_variants
from models.tasks.sliding_window import PatchClassifier

__all__ = [
    "DETECTION_ENCODER",
    "RCNN",
    "DetectorConfig",
    "EncoderFPN",
    "GridConfig",
    "GridDetector",
    "Localizer",
    "MultiScaleRoIPool",
    "NoResizeTransform",
    "PatchClassifier",
    "SemanticNet",
    "TwoStageConfig",
    "build_grid_detector",
    "build_mask_rcnn",
    "build_two_stage",
    "check_images",
    "check_targets",
    "fit_anchors",
    "make_backbone",
    "make_roi_heads",
    "make_rpn",
    "make_transform",
    "masks_to_label_image",
    "rcnn_from_config",
    "selective_search",
    "valid_variants",
]
