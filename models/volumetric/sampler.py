"""Random augmented training crops of a volume with their targets and loss masks."""

from __future__ import annotations

import numpy as np
import torch

from models.base import Network
from models.errors import ConfigError, InputError
from models.volumetric.augment import AugmentConfig, Augmenter
from models.volumetric.config import TrainConfig
from models.volumetric.lsd import local_shape_descriptors
from models.volumetric.predict import normalize
from models.volumetric.targets import affinities, boundary_map


class Sampler:
    """Random augmented crops with their targets and masks, as torch batches."""

    def __init__(
        self, raw: np.ndarray, labels: np.ndarray, model: Network, config: TrainConfig
    ) -> None:
        self.spec = model.spec
        self.raw = normalize(raw, self.spec)
        self.labels = labels
        self.config = config
        self.augment = Augmenter(AugmentConfig.from_dict(config.augment))
        self.crop = tuple(int(c) for c in config.crop_shape)
        if len(self.crop) != self.spec.ndim:
            raise ConfigError(f"crop_shape {self.crop} must have {self.spec.ndim} entries")
        bad = [c for c, m in zip(self.crop, self.spec.size_multiple, strict=True) if c % m]
        if bad:
            raise ConfigError(
                f"crop_shape {self.crop} must be a multiple of the network's {self.spec.size_multiple}"
            )
        offsets = self.spec.offsets or ()
        self.margin = max([1] + [abs(v) for o in offsets for v in o])
        big = tuple(c + 2 * self.margin for c in self.crop)
        if any(b > s for b, s in zip(big, raw.shape, strict=True)):
            raise InputError(
                f"training volume {raw.shape} is smaller than a crop with margin {big}; "
                "use a smaller crop_shape or more data"
            )
        self.big = big

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, ys, ms = [], [], []
        inner = tuple(slice(self.margin, self.margin + c) for c in self.crop)
        for _ in range(self.config.batch_size):
            start = [
                int(rng.integers(0, s - b + 1))
                for s, b in zip(self.raw.shape, self.big, strict=False)
            ]
            sl = tuple(slice(a, a + b) for a, b in zip(start, self.big, strict=True))
            raw, labels = self.augment(self.raw[sl], self.labels[sl], rng)
            if self.spec.output == "affinity":
                target, mask = affinities(labels, self.spec.offsets)
                target, mask = target[(slice(None),) + inner], mask[(slice(None),) + inner]
                if self.config.lsd_sigma is not None:
                    target, mask = self._with_lsds(labels, inner, target, mask)
            else:
                target, mask = boundary_map(labels)
                target, mask = target[inner][None], mask[inner][None]
            xs.append(raw[inner][None])
            ys.append(target)
            ms.append(mask)
        return tuple(torch.from_numpy(np.stack(a)) for a in (xs, ys, ms))

    def _with_lsds(
        self, labels: np.ndarray, inner: tuple, target: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Affinity target and mask with the local shape descriptors (and their mask: labeled
        voxels) appended as further channels. LSDs are computed on the crop with its margin."""
        lsd = local_shape_descriptors(
            labels, float(self.config.lsd_sigma), downsample=self.config.lsd_downsample
        )[(slice(None),) + inner]
        labeled = (labels[inner] != 0).astype(np.float32)
        lsd_mask = np.broadcast_to(labeled, lsd.shape)
        return np.concatenate([target, lsd]), np.concatenate([mask, lsd_mask])
