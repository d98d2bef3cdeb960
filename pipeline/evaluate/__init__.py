"""Segmentation metrics against ground truth: VI split/merge and adapted Rand error from sparse
contingency tables (``tables``: one compiled pass per block, tables summed in any order), and
scoring whole volumes block by block, in one process or on a Dask cluster with the block tables
summed on the workers (``volumes``)."""

from pipeline.evaluate.tables import (
    Contingency,
    block_contingency,
    evaluate_arrays,
    reduce_pairs,
    scores_from_table,
)
from pipeline.evaluate.volumes import block_slices, evaluate_volumes, sum_tables

__all__ = [
    "Contingency",
    "block_contingency",
    "block_slices",
    "evaluate_arrays",
    "evaluate_volumes",
    "reduce_pairs",
    "scores_from_table",
    "sum_tables",
]
