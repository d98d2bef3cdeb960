"""Patch-based network inference over volumes: the global patch grid, the blending window,
the batched engine, test-time augmentation and how workers get the network. Names load on first
use (see ``pipeline.lazy_api``): the patch grid, for one, needs no torch."""

from pipeline.lazy_api import LazyApi

__getattr__ = LazyApi(
    __name__,
    {
        "engine": ["EngineConfig", "PatchEngine"],
        "fuse": ["fold_batch_norms"],
        "network": ["ModelSource", "pick_device", "set_torch_threads"],
        "patch_grid": ["AxisGrid", "PatchGrid"],
        "window": ["gaussian_window"],
    },
)
__all__ = __getattr__.names
