"""Every model by name: the one registry a checkpoint or a training config is rebuilt through.

Volumetric networks (``model.architecture``): "unet", "fcn". 2D task models (``model.task``):
"semantic", "patch", "localize", "detect", "instance", "grid_detect" (imported on first use, so
loading a volumetric network does not import torchvision's detection models). Configs in an
older layout are translated first (models.legacy).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from models.errors import ConfigError
from models.fcn import FCN
from models.legacy import upgrade_config
from models.unet import UNet

Builder = Callable[..., nn.Module]
VOLUMETRIC: dict[str, Builder] = {"unet": UNet, "fcn": FCN}
TASKS_2D = ("semantic", "patch", "localize", "detect", "instance", "grid_detect")


def task_builders() -> dict[str, Builder]:
    """The 2D task models' builders (each takes the model's config as keywords)."""
    from models.tasks.detect_grid import build_grid_detector
    from models.tasks.detect_two_stage import build_two_stage
    from models.tasks.localize import Localizer
    from models.tasks.semantic import SemanticNet
    from models.tasks.sliding_window import PatchClassifier

    return {
        "semantic": SemanticNet,
        "patch": PatchClassifier,
        "localize": Localizer,
        "detect": build_two_stage,
        "instance": build_two_stage,  # its config has masks=True
        "grid_detect": build_grid_detector,
    }


def builder(architecture: str) -> Builder:
    """The class or function that builds ``architecture`` from its config."""
    if architecture in VOLUMETRIC:
        return VOLUMETRIC[architecture]
    if architecture in TASKS_2D:
        return task_builders()[architecture]
    known = sorted([*VOLUMETRIC, *TASKS_2D])
    raise ConfigError(f"architecture {architecture!r} is unknown; use one of {known}")


def build_model(architecture: str, config: dict) -> nn.Module:
    """A fresh (untrained) model from an architecture name and its config (any layout petaseg
    has written)."""
    make = builder(architecture)
    try:
        return make(**upgrade_config(architecture, config))
    except TypeError as e:
        raise ConfigError(f"model config for {architecture!r} is invalid: {e}") from None


def architecture_of(model: nn.Module) -> str:
    """The registered name a model is saved under (``architecture`` or ``task``)."""
    name = getattr(model, "architecture", None) or getattr(model, "task", None)
    if name not in VOLUMETRIC and name not in TASKS_2D:
        raise ConfigError(
            f"{type(model).__name__} has no registered architecture (got {name!r}); save a "
            "model of models.architectures or add its builder there"
        )
    return name
