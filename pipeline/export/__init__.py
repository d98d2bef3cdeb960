"""Export for viewers: multiscale Neuroglancer precomputed layers, meshes and skeletons, segment
properties, candidate annotations, the viewer state, and serving it on 127.0.0.1; or one OME-Zarr
image with its segmentations as label images (``export_ome_zarr``)."""

from pipeline.export.objects import ObjectParams
from pipeline.export.ome_zarr import OmeZarrResult, export_ome_zarr
from pipeline.export.precomputed import (
    ExportResult,
    export,
    export_image,
    export_segmentation,
    read_state_file,
)
from pipeline.export.serve import DataServer
from pipeline.export.sharded_run import default_mesh_level, default_skeleton_level
from pipeline.export.view import open_viewer

__all__ = [
    "DataServer",
    "ExportResult",
    "ObjectParams",
    "OmeZarrResult",
    "default_mesh_level",
    "default_skeleton_level",
    "export",
    "export_image",
    "export_ome_zarr",
    "export_segmentation",
    "open_viewer",
    "read_state_file",
]
