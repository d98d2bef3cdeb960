"""Training, evaluating and running the 2D task models (models.tasks) on EM sections: labels to
classes, instances and boxes, random augmented batches, one training loop, the train-and-evaluate
recipes ``petaseg train2d`` and the 2D bench share, metrics, one prediction call and its overlay."""

from models.train2d.data import InstanceSections, LocalizationSet, intensity_stats, to_float
from models.train2d.fit import default_device, fit, to_device
from models.train2d.predict import predict_image, summary
from models.train2d.recipes import (
    build_detection_model,
    evaluate_detection,
    evaluate_localizer,
    evaluate_semantic,
    train_detection,
    train_localizer,
    train_patch_classifier,
    train_semantic,
)

__all__ = [
    "InstanceSections",
    "LocalizationSet",
    "build_detection_model",
    "default_device",
    "evaluate_detection",
    "evaluate_localizer",
    "evaluate_semantic",
    "fit",
    "intensity_stats",
    "predict_image",
    "summary",
    "to_device",
    "to_float",
    "train_detection",
    "train_localizer",
    "train_patch_classifier",
    "train_semantic",
]
