"""The statistics of ``bench --check``: exact where deterministic, seed-aware t-tests with Holm elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import plain_result

from plipbench.evaluation.results import decode_array, encode_array
from plipbench.leaderboard.reproduction import CheckRule, check_reproduction, holm

COLUMNS = [(f"task{i}", "fine-tune") for i in range(10)]
BACKBONES = ["A", "B", "C", "floor"]


def make_run(rng, *, seeds: int = 3, sd: float = 0.02, shift: dict | None = None, steps: int = 100):
    """One suite run: every backbone x column x seed, scores = column mean + seed noise."""
    out = []
    for b, backbone in enumerate(BACKBONES):
        for c, (task, protocol) in enumerate(COLUMNS):
            for s in range(seeds):
                mean = 0.3 + 0.04 * c + 0.05 * b + (shift or {}).get((backbone, task), 0.0)
                r = plain_result(backbone, task, float(np.clip(mean + rng.normal(0, sd), 0, 1)), protocol=protocol)
                r.seed = s
                r.zero_shot = False
                r.provenance.backbone = {"fingerprint": f"{backbone}-{s}", "pretraining_steps": steps,
                                         "pretraining_recipe": backbone}
                r.provenance.protocol_options = {"base": protocol}
                out.append(r)
    return out


def test_holm_golden() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []
    assert holm([0.5]) == [0.5]


def test_identical_reruns_pass_and_noisy_reruns_rarely_fail() -> None:
    rng = np.random.default_rng(0)
    committed = make_run(rng)
    assert check_reproduction(committed, committed).ok
    # 200 reruns of the same experiment (fresh seed noise): the family-wise rate of a false failure is <= alpha
    failures = sum(not check_reproduction(committed, make_run(rng)).ok for _ in range(200))
    assert failures <= 6  # alpha = 0.01: expect about 2 at most; 6 is far in the tail


def test_a_real_change_fails_listing_its_cells() -> None:
    rng = np.random.default_rng(1)
    committed = make_run(rng)
    broken = make_run(rng, shift={("A", "task3"): -0.08, ("B", "task3"): -0.08})  # 4 seed sds
    report = check_reproduction(committed, broken)
    failed = sorted((c.backbone, c.task) for c in report.cells if not c.ok)
    assert failed == [("A", "task3"), ("B", "task3")]
    assert len(report.problems) == 2 and all("Holm-adjusted p" in p for p in report.problems)
    assert "2 problem(s)" in report.summary()


def test_the_column_pooled_sigma_gives_power_at_three_seeds() -> None:
    rng = np.random.default_rng(2)
    committed = make_run(rng)
    report = check_reproduction(committed, make_run(rng))
    sources = {c.sigma_source for c in report.cells}
    assert sources <= {"column", "cell", "floor"} and "column" in sources
    assert all(c.df >= 4 for c in report.cells if c.sigma_source == "column")


def test_exact_cells_must_match_exactly_and_data_hashes_and_seed_counts_are_checked() -> None:
    rng = np.random.default_rng(3)
    committed = make_run(rng, steps=0)
    for r in committed:  # the untrained floor, zero-shot: deterministic on any machine
        r.zero_shot = True
        r.protocol = "zero-shot"
        r.provenance.protocol_options = {"base": "zero-shot"}
    rerun = [r.model_copy(deep=True) for r in committed]
    report = check_reproduction(committed, rerun)
    assert report.ok and {c.kind for c in report.cells} == {"exact"}
    rerun[5].scores["R@1"] += 1e-6  # these results carry no per-query data: no test on the queries, so it fails
    report = check_reproduction(committed, rerun)
    assert len(report.problems) == 1 and "deterministic cell changed" in report.problems[0]
    rerun = [r.model_copy(deep=True) for r in committed]
    for r in rerun:
        if (r.backbone, r.task) == ("A", "task0"):
            r.provenance.dataset_fingerprint = "regenerated"
    assert "dataset fingerprints differ" in check_reproduction(committed, rerun).problems[0]
    fewer = [r for r in committed if r.seed != 2]
    problems = check_reproduction(committed, fewer).problems
    assert problems and all("seeds differ" in p for p in problems)


def test_missing_and_extra_cells() -> None:
    rng = np.random.default_rng(4)
    committed = make_run(rng)
    rerun = [r for r in committed if r.backbone != "C"]
    extra = plain_result("new", "task0", 0.5, protocol="fine-tune")
    problems = check_reproduction(committed, rerun + [extra]).problems
    assert sum("missing from the rerun" in p for p in problems) == len(COLUMNS)
    assert any("not in the committed results" in p for p in problems)


def test_rule_options_are_validated() -> None:
    with pytest.raises(ValueError):
        CheckRule(alpha=0)
    with pytest.raises(ValueError):
        CheckRule(tolerance=0.02)


def make_correlated_run(rng, *, seeds: int = 3, sd: float = 0.02, shift: dict | None = None, rho: float = 0.6):
    """As make_run, but each seed's model is better or worse on every column together (a shared quality term with
    correlation ``rho`` between a backbone's columns), as trained models are."""
    out = make_run(rng, seeds=seeds, sd=0.0, shift=shift)
    quality = {(b, s): rng.normal(0, sd * np.sqrt(rho)) for b in BACKBONES for s in range(seeds)}
    for r in out:
        noise = quality[(r.backbone, r.seed)] + rng.normal(0, sd * np.sqrt(1 - rho))
        r.scores[r.main_score] = float(np.clip(r.scores[r.main_score] + noise, 0, 1))
    return out


def test_correlated_null_reruns_rarely_fail_with_the_backbone_composites() -> None:
    rng = np.random.default_rng(3)
    committed = make_correlated_run(rng)
    reports = [check_reproduction(committed, make_correlated_run(rng)) for _ in range(200)]
    assert all(len(r.backbones) == len(BACKBONES) and r.backbones[0].df == 8 * len(BACKBONES) // 2 for r in reports)
    assert sum(not r.ok for r in reports) <= 6  # alpha = 0.01 family-wise, cells and backbones together


def test_a_backbone_wide_break_fails_through_its_composite_when_no_cell_does() -> None:
    rng = np.random.default_rng(4)
    committed = make_run(rng)
    # every column of backbone A 2.5 seed deviations lower (about what fixing CLIP's temperature at 1 did to
    # CLIP-mini): no single cell is significant after Holm, the backbone's composite is
    broken = make_run(rng, shift={("A", task): -0.05 for task, _ in COLUMNS})
    report = check_reproduction(committed, broken)
    assert all(c.ok for c in report.cells)
    failed = [b.backbone for b in report.backbones if not b.ok]
    assert failed == ["A"] and len(report.problems) == 1 and "composite of 10 trained cells" in report.problems[0]
    assert "backbone composite(s)" in report.summary()
    unbroken = check_reproduction(committed, make_run(rng))
    assert unbroken.ok and all(b.p_holm is not None for b in unbroken.backbones)


def _exact_with_queries(rng, n: int = 400):
    """Untrained zero-shot cells with per-query AP (3 seeds each), as the floor's zero-shot columns are."""
    committed = make_run(rng, steps=0)
    for r in committed:
        r.zero_shot, r.protocol, r.main_score = True, "zero-shot", "mAP"
        r.provenance.protocol_options = {"base": "zero-shot"}
        ap = rng.uniform(0, 1, n)
        r.per_query = {"AP": encode_array(ap)}
        r.scores = {"mAP": float(ap.mean())}
    return committed


def test_exact_cells_that_differ_in_their_last_bits_are_tested_on_their_queries() -> None:
    rng = np.random.default_rng(5)
    committed = _exact_with_queries(rng)
    # another CPU: every feature differs in its last bits, and a few near-ties flip (a few queries move a little)
    rerun = [r.model_copy(deep=True) for r in committed]
    for r in rerun:
        ap = decode_array(r.per_query["AP"]).astype(np.float64)
        moved = rng.choice(len(ap), 3, replace=False)
        ap[moved] = np.clip(ap[moved] + rng.normal(0, 0.05, 3), 0, 1)
        ap += rng.normal(0, 1e-7, len(ap))
        r.per_query = {"AP": encode_array(ap)}
        r.scores = {"mAP": float(ap.mean())}
    report = check_reproduction(committed, rerun)
    assert report.ok, report.problems
    numeric = [c for c in report.cells if c.kind == "exact" and c.t is not None]
    assert len(numeric) == len(report.cells) and all(c.df == 399 and c.p_holm is not None for c in numeric)
    assert "bit-equal" in report.summary()
    # a real change of a deterministic cell: one backbone's every query shifted a little in one direction
    broken = [r.model_copy(deep=True) for r in committed]
    for r in broken:
        if (r.backbone, r.task) == ("floor", "task2"):
            ap = np.clip(decode_array(r.per_query["AP"]) - 0.02, 0, 1)
            r.per_query, r.scores = {"AP": encode_array(ap)}, {"mAP": float(ap.mean())}
    report = check_reproduction(committed, broken)
    assert [(c.backbone, c.task) for c in report.cells if not c.ok] == [("floor", "task2")]
    assert "per-query paired t" in report.problems[0] and "Holm-adjusted p" in report.problems[0]
    # other queries in the rerun: nothing to pair, so equality is required
    other = [r.model_copy(deep=True) for r in committed]
    other[0].per_query = {"AP": encode_array(decode_array(other[0].per_query["AP"])[:-1])}
    other[0].scores["mAP"] += 1e-6
    assert "deterministic cell changed" in check_reproduction(committed, other).problems[0]
