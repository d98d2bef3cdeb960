"""The volumetric engine: volumes by URL (``io``), the blockwise runner (``runner``), numpy/numba
segmentation algorithms (``seg``), one module per stage (``stages``), network inference
(``inference``, the only torch here), merge/split error correction (``correct``), the edit log
(``proofread``), export for viewers (``export``), synthetic data (``synthetic``), and the core
types: ``Roi`` (``geometry``), lookup tables (``lut``), metrics (``evaluate``), user errors
(``errors``). The engine receives a Dask client; it never starts one."""

__all__ = [
    "correct",
    "errors",
    "evaluate",
    "export",
    "geometry",
    "inference",
    "io",
    "lut",
    "proofread",
    "provenance",
    "runner",
    "seg",
    "stages",
    "synthetic",
]
