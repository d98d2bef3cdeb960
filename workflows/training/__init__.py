"""Training workflows: reading training data from volumes and files into the arrays that
``models/`` trains on (``data2d``: the 2D presets of ``petaseg train2d``)."""

__all__ = ["data2d"]
