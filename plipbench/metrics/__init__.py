"""Evaluation metrics: image ReID (Market-1501 and CUHK03 protocols, optional k-reciprocal re-ranking),
text/image person retrieval (IRRA protocol), pedestrian attributes, human parsing (SCHP's mIoU), person search
(SeqNet's CUHK-SYSU / PRW evaluation), and bootstrap confidence intervals.

All scores are fractions in [0, 1]. Each result carries a ``protocol`` dict recording the options that
change the numbers. Heavy imports (torch, scipy) happen inside the functions.
"""

from plipbench.metrics._checks import MetricInputError
from plipbench.metrics.attributes import evaluate_attributes
from plipbench.metrics.parsing import ParsingConfusion, evaluate_parsing, merge_flip
from plipbench.metrics.person_search import Detections, QueryGallery, evaluate_person_search
from plipbench.metrics.person_search_galleries import (
    cuhk_sysu_galleries,
    evaluate_cuhk_sysu,
    evaluate_prw,
    prw_galleries,
)
from plipbench.metrics.reid import evaluate_reid, evaluate_reid_cuhk03
from plipbench.metrics.rerank import KReciprocalReranker
from plipbench.metrics.retrieval import evaluate_retrieval
from plipbench.metrics.stats import bootstrap_ci, hits_at_k, paired_bootstrap

__all__ = [
    "Detections",
    "KReciprocalReranker",
    "MetricInputError",
    "ParsingConfusion",
    "QueryGallery",
    "bootstrap_ci",
    "cuhk_sysu_galleries",
    "evaluate_attributes",
    "evaluate_cuhk_sysu",
    "evaluate_parsing",
    "evaluate_person_search",
    "evaluate_prw",
    "evaluate_reid",
    "evaluate_reid_cuhk03",
    "evaluate_retrieval",
    "hits_at_k",
    "merge_flip",
    "paired_bootstrap",
    "prw_galleries",
]
