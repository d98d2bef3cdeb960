"""Training workflows: reading training data from volumes and files into the arrays that
``models/`` trains on, and the training runs the ``petaseg train`` commands start
(``data2d``: the 2D presets; ``train2d``: ``petaseg train2d`` and ``predict2d``; ``train3d``:
``petaseg train boundary|affinity``)."""

__all__ = ["data2d", "train2d", "train3d"]
