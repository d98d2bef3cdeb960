"""Patch-based network inference over volumes: the global patch grid, the blending window,
the batched engine, test-time augmentation, how workers get the network, reading the next
block ahead and where a run's time goes (busy fraction). Names load on first
use (see ``pipeline.lazy_api``): the patch grid, for one, needs no torch."""

from pipeline.lazy_api import LazyApi

__getattr__ = LazyApi(
    __name__,
    {
        "engine": ["BF16_MAX_ABS_DIFF", "BF16_MEAN_ABS_DIFF", "EngineConfig", "PatchEngine"],
        "fuse": ["fold_batch_norms"],
        "network": ["ModelSource", "pick_device", "set_torch_threads"],
        "patch_grid": ["AxisGrid", "PatchGrid"],
        "prefetch": ["Prefetcher", "thread_prefetcher"],
        "timing": ["WorkerTimes", "busy_summary", "collect_times", "record_block"],
        "window": ["gaussian_window"],
    },
)
__all__ = __getattr__.names
