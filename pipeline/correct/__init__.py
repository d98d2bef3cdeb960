"""Merge- and split-error correction on the region-graph tables: candidates named for the error
they find (``split_errors``: touching segments that are one neuron; ``merge_errors``: segments
that hold two), their features, gradient-boosted classifiers, training against ground truth, and
applying confident corrections to a lookup table."""

from pipeline.correct.apply import Action, auto_correct, pair_truth, split_truth
from pipeline.correct.classifier import ErrorModel, precision_at
from pipeline.correct.features import run_features
from pipeline.correct.merge_errors import SplitCandidates, split_candidates
from pipeline.correct.split_errors import PairCandidates, pair_candidates
from pipeline.correct.tables import Segments, Tables
from pipeline.correct.train import Labelled, detect, label, train_model
from pipeline.correct.truth import FragmentTruth

__all__ = [
    "Action",
    "ErrorModel",
    "FragmentTruth",
    "Labelled",
    "PairCandidates",
    "Segments",
    "SplitCandidates",
    "Tables",
    "auto_correct",
    "detect",
    "label",
    "pair_candidates",
    "pair_truth",
    "precision_at",
    "run_features",
    "split_candidates",
    "split_truth",
    "train_model",
]
