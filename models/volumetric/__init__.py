"""Training and evaluating the volumetric (boundary / affinity) networks on numpy volumes:
augmentation, targets from neuron labels, masked losses, voxel metrics, tiled prediction, the
training loop with checkpoint and resume, and its plots."""

from models.volumetric.augment import AugmentConfig, Augmenter
from models.volumetric.config import TrainConfig
from models.volumetric.losses import LOSSES, masked_loss
from models.volumetric.lsd import local_shape_descriptors, lsd_channels
from models.volumetric.metrics import average_precision, f1_score
from models.volumetric.predict import normalize, predict_volume
from models.volumetric.sampler import Sampler
from models.volumetric.targets import affinities, affinities_to_boundary, boundary_map
from models.volumetric.train import export_model, make_model, train
from models.volumetric.validation import validate

__all__ = [
    "LOSSES",
    "AugmentConfig",
    "Augmenter",
    "Sampler",
    "TrainConfig",
    "affinities",
    "affinities_to_boundary",
    "average_precision",
    "boundary_map",
    "export_model",
    "f1_score",
    "local_shape_descriptors",
    "lsd_channels",
    "make_model",
    "masked_loss",
    "normalize",
    "predict_volume",
    "train",
    "validate",
]
