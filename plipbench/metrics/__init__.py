"""Evaluation metrics: image ReID (Market-1501 and CUHK03 protocols, optional k-reciprocal re-ranking),
text/image person retrieval (IRRA protocol), pedestrian attributes, human parsing (SCHP's mIoU), and bootstrap
confidence intervals.

All scores are fractions in [0, 1]. Each result carries a ``protocol`` dict recording the options that
change the numbers. Heavy imports (torch, scipy) happen inside the functions.
"""

from plipbench.metrics._checks import MetricInputError
from plipbench.metrics.attributes import evaluate_attributes
from plipbench.metrics.parsing import ParsingConfusion, evaluate_parsing, merge_flip
from plipbench.metrics.reid import evaluate_reid, evaluate_reid_cuhk03
from plipbench.metrics.rerank import KReciprocalReranker
from plipbench.metrics.retrieval import evaluate_retrieval
from plipbench.metrics.stats import bootstrap_ci, hits_at_k, paired_bootstrap

__all__ = [
    "KReciprocalReranker",
    "MetricInputError",
    "ParsingConfusion",
    "bootstrap_ci",
    "evaluate_attributes",
    "evaluate_parsing",
    "evaluate_reid",
    "evaluate_reid_cuhk03",
    "evaluate_retrieval",
    "hits_at_k",
    "merge_flip",
    "paired_bootstrap",
]
