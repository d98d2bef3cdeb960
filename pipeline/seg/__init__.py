"""Segmentation algorithms on numpy arrays (one block or one graph): no volumes, no Dask.

The watershed of a boundary map into fragments (``watershed``: distance transform, seeds, a
priority flood, small fragments merged) and of the faces' affinities (``affinity_watershed``), the region graph of a label block (``contacts``,
``rag``), hierarchical agglomeration of a graph (``agglomeration``; learned scores: ``learned``,
``edge_features``, ``tree_ensemble``), union-find over big graphs
(``unionfind``), block-independent fragment ids (``ids``) and the mutex watershed of affinities
(``mutex``). Names load on first use (see
``pipeline.lazy_api``): a worker imports only the modules its stage needs."""

from pipeline.lazy_api import LazyApi

__getattr__ = LazyApi(
    __name__,
    {
        "affinity_watershed": ["affinity_basins"],
        "agglomeration": ["Scoring", "agglomerate"],
        "contacts": ["block_contacts", "face_channels"],
        "distance": ["distance_transform"],
        "edge_features": ["FEATURES", "edge_features"],
        "filters": ["gaussian", "seeds_from_distance"],
        "ids": ["id_blocks", "ids_from_local", "ids_valid"],
        "learned": ["EdgeClassifier", "agglomerate_learned", "fit_ensemble"],
        "mutex": ["MutexParams", "mutex_segments"],
        "rag": ["histogram_quantile", "pair_keys", "reduce_edges", "region_contacts"],
        "small": ["small_fragment_roots"],
        "tree_ensemble": ["TreeEnsemble"],
        "unionfind": ["StreamingUnionFind", "components"],
        "valuerange": ["value_range"],
        "watershed": [
            "Basins",
            "FragmentParams",
            "fragment_basins",
            "fragments_from_boundary",
            "merge_small_fragments",
            "watershed_fragments",
        ],
    },
)
__all__ = __getattr__.names
