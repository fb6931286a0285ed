"""Leaderboards from result files: aggregation, confidence intervals, paired comparison, renderers.

Public API::

    build_leaderboard(results, *, with_ci=False, reference=None, protocol=None, task_family=None,
                      n_resamples=1000, confidence=0.95, seed=0) -> Leaderboard
    compare_backbones(results, a, b, *, alpha=0.05, n_resamples=1000, confidence=0.95, seed=0) -> DataFrame
    reference_results("plip-paper") -> DataFrame   # reported in the PLIP paper, not reproduced

pandas and matplotlib are imported inside the functions that need them.
"""

from plipbench.leaderboard.aggregate import Column, Leaderboard, TableView, build_leaderboard
from plipbench.leaderboard.compare import compare_backbones
from plipbench.leaderboard.reference import REFERENCE_LABEL, paper_task_of, reference_results

__all__ = ["Column", "Leaderboard", "TableView", "build_leaderboard", "compare_backbones", "reference_results",
           "paper_task_of", "REFERENCE_LABEL"]
