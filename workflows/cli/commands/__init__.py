"""The sub-commands, one module per command group; each command is a module-level function
(``workflows.cli.app`` composes them)."""

__all__ = [
    "bench",
    "correct",
    "export",
    "predict",
    "proofread",
    "segment",
    "train",
    "train2d",
    "volumes",
    "workflow",
]
