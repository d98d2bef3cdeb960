"""The error types models/ raises: the pipeline's own, so the CLI prints them without a traceback."""

from pipeline.errors import CheckpointError, ConfigError, InputError, PetasegError

__all__ = ["CheckpointError", "ConfigError", "InputError", "PetasegError"]
