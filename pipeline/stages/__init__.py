"""The stages of a segmentation run, each a blockwise Dask job over volumes and tables:
``predict`` (a network into a boundary map), ``fragments`` (watershed; or ``mutex``: mutex watershed of affinities), ``graph`` (the region
graph), ``agglomerate`` (merge scores), ``segment`` (lookup tables per threshold), ``relabel``
(the segmentation), ``correct`` (merge- and split-error correction), ``convert`` (formats),
``pyramid`` (the scale levels of a Zarr volume).
Names load on first use (see ``pipeline.lazy_api``): a worker running one stage imports that
stage only, and nothing but ``predict`` imports torch. Two functions share their module's name
and so are not listed here (the package attribute is the module once it is imported): import
``pipeline.stages.predict.predict`` (= ``run_predict(plan_predict(...))``) and
``pipeline.stages.convert.convert`` from their modules."""

from pipeline.lazy_api import LazyApi

__getattr__ = LazyApi(
    __name__,
    {
        "agglomerate": ["run_agglomerate"],
        "correct": ["run_correct"],
        "fragments": ["run_fragments"],
        "graph": ["run_graph"],
        "mutex": ["run_mutex_fragments"],
        "predict": ["plan_predict", "predict_array", "run_predict"],
        "pyramid": ["run_pyramid"],
        "relabel": ["apply_lut", "output_for", "relabel_luts", "run_relabel"],
        "segment": ["run_segment"],
        "warm": ["warm"],
    },
)
__all__ = __getattr__.names
