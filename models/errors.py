"""The errors models/ raises, on their own (models/ imports no other part of petaseg).

Each names the input, setting or file at fault and what to do about it. The CLI prints any
:class:`ModelError` as one line and exits with code 2, as it does for the pipeline's errors.
"""

__all__ = ["CheckpointError", "ConfigError", "InputError", "ModelError"]


class ModelError(Exception):
    """Base of every error a user of the model library can cause and fix."""


class InputError(ModelError):
    """An array, tensor, image or volume given to a model is unusable (shape, dtype, channels)."""


class ConfigError(ModelError):
    """A model, encoder or training option is unknown or has a wrong value."""


class CheckpointError(ModelError):
    """A model checkpoint is missing, corrupt, foreign or of another architecture."""
