"""petaseg's PyTorch model library (imports only torch, torchvision, numpy and a few array
libraries; never the pipeline, workflows or cluster):

- ``errors``: the library's own errors (:class:`ModelError` and its kinds);
- ``layers``, ``upsample``: convolution blocks, down- and upsampling by name;
- ``encoders``: the encoder contract, :class:`EncoderConfig` and the ``get_encoder`` registry;
- ``unet``, ``fcn``, ``base``, ``spec``: the volumetric networks and what inference needs of them;
- ``architectures``, ``checkpoint``, ``legacy``, ``zoo``: every model by name, the one checkpoint
  reader/writer, translation of older configs, the shipped models;
- ``device``: device names ("auto": the GPU when there is one) and bf16 autocast;
- ``volumetric``: training and evaluating the volumetric networks;
- ``tasks``: the 2D task architectures; ``train2d``: their data, training, metrics, prediction.

Import the submodules by path (``from models.encoders import get_encoder``); this package itself
imports nothing, so ``models.errors`` loads without torch.
"""

__all__ = [
    "architectures",
    "base",
    "checkpoint",
    "device",
    "encoders",
    "errors",
    "fcn",
    "layers",
    "legacy",
    "records",
    "spec",
    "tasks",
    "train2d",
    "unet",
    "upsample",
    "volumetric",
    "zoo",
]
