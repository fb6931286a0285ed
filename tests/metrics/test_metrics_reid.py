"""Golden tests (worked examples of the reference brief), torchreid cross-checks and properties for ReID metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plipbench.metrics import KReciprocalReranker, MetricInputError, evaluate_reid, evaluate_reid_cuhk03


def _one_query(raw, **kw):
    """A single query (pid 1, cam 0) whose kept ranking has relevance ``raw`` (gallery already in distance order)."""
    raw = np.asarray(raw)
    g_pids = np.where(raw == 1, 1, 2 + np.arange(len(raw)))
    dist = np.arange(1, len(raw) + 1, dtype=np.float64)[None, :] / 10
    return evaluate_reid(dist, q_pids=[1], q_camids=[0], g_pids=g_pids, g_camids=np.ones(len(raw), int),
                         return_per_query=True, **kw)


@pytest.mark.parametrize(
    ("raw", "noninterp", "trapz", "inp"),
    [([0, 1, 0, 1, 1], 0.5333, 0.4056, 0.6), ([1, 0, 0, 0, 1], 0.7, 0.6625, 0.4), ([0, 0, 0, 0, 1], 0.2, 0.1, 0.2),
     ([1, 1, 0, 0, 0], 1.0, 1.0, 1.0)],
)
def test_ap_variants_on_worked_examples(raw, noninterp, trapz, inp):
    r = _one_query(raw, max_rank=5)
    assert r["mAP"] == pytest.approx(noninterp, abs=5e-5)
    assert r["mINP"] == pytest.approx(inp, abs=1e-12)
    assert _one_query(raw, max_rank=5, ap="market-trapz")["mAP"] == pytest.approx(trapz, abs=5e-5)
    first = raw.index(1)
    assert r["cmc"].tolist() == [0.0] * first + [1.0] * (5 - first)
    assert r["protocol"]["ap"] == "noninterp"


SAME_CAM = dict(q_pids=[7], q_camids=[1], g_pids=[7, 3, 7, 7, 5, 7], g_camids=[1, 2, 2, 1, 3, 4])
SAME_CAM_DIST = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])


def test_same_camera_removal_worked_example():
    r = evaluate_reid(SAME_CAM_DIST, max_rank=4, **SAME_CAM)
    assert r["mAP"] == pytest.approx(0.5, abs=1e-12)
    assert r["mINP"] == pytest.approx(0.5, abs=1e-12)
    assert r["cmc"].tolist() == [0.0, 1.0, 1.0, 1.0]
    # without removal (query on a camera no gallery item shares) the ranking is [1,0,1,1,0,1]
    r2 = evaluate_reid(SAME_CAM_DIST, max_rank=4, **{**SAME_CAM, "q_camids": [9]})
    assert r2["mAP"] == pytest.approx(0.7708, abs=5e-5)
    assert r2["cmc"][0] == 1.0


def test_shuffled_gallery_gives_the_same_worked_example():
    perm = np.array([4, 0, 5, 2, 1, 3])
    r = evaluate_reid(SAME_CAM_DIST[:, perm], max_rank=4, q_pids=[7], q_camids=[1],
                      g_pids=np.array(SAME_CAM["g_pids"])[perm], g_camids=np.array(SAME_CAM["g_camids"])[perm])
    assert r["mAP"] == pytest.approx(0.5, abs=1e-12)


def test_query_without_valid_match_is_skipped_or_counted_as_zero():
    # query 0: worked example; query 1 (pid 3, cam 2): its only gallery image is on its own camera
    dist = np.vstack([SAME_CAM_DIST, SAME_CAM_DIST[:, ::-1]])
    kw = dict(q_pids=[7, 3], q_camids=[1, 2], g_pids=SAME_CAM["g_pids"], g_camids=SAME_CAM["g_camids"], max_rank=4)
    r = evaluate_reid(dist, return_per_query=True, **kw)
    assert r["num_valid_queries"] == 1 and r["num_queries"] == 2
    assert r["mAP"] == pytest.approx(0.5)
    assert r["per_query"]["valid"].tolist() == [True, False]
    assert r["per_query"]["first_hit_rank"].tolist() == [1, -1]
    t = evaluate_reid(dist, ap="market-trapz", **kw)
    # trapezoid AP of [0,1,0,1] = (0 + 1/2)/2/2 + (1/3 + 2/4)/2/2, divided by all 2 queries
    assert t["mAP"] == pytest.approx(((0 + 0.5) / 4 + (1 / 3 + 0.5) / 4) / 2)
    assert t["cmc"].tolist() == [0.0, 0.5, 0.5, 0.5]


def test_junk_and_distractor_ids():
    # gallery in distance order: junk (-1), distractor (0), positive, other id
    kw = dict(q_pids=[4], q_camids=[0], g_pids=[-1, 0, 4, 5], g_camids=[1, 1, 1, 1], max_rank=3)
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    assert evaluate_reid(dist, **kw)["mAP"] == pytest.approx(1 / 3)  # both are ordinary negatives
    r = evaluate_reid(dist, junk_pids=[-1], **kw)
    assert r["mAP"] == pytest.approx(1 / 2)  # junk removed, distractor stays a negative
    assert r["protocol"]["junk_pids"] == [-1]


def test_short_kept_list_pads_cmc_with_last_value():
    r = evaluate_reid(np.array([[0.2, 0.1, 0.3]]), q_pids=[1], q_camids=[0], g_pids=[2, 1, 1], g_camids=[1, 1, 0],
                      max_rank=6)
    assert r["cmc"].tolist() == [1.0] * 6 and len(r["cmc"]) == 6


def test_ties_are_broken_by_gallery_index():
    kw = dict(q_pids=[1], q_camids=[0], g_camids=[1, 1], max_rank=2)
    assert evaluate_reid(np.array([[0.5, 0.5]]), g_pids=[2, 1], **kw)["mAP"] == 0.5
    assert evaluate_reid(np.array([[0.5, 0.5]]), g_pids=[1, 2], **kw)["mAP"] == 1.0
    assert "gallery index" in evaluate_reid(np.array([[0.5, 0.5]]), g_pids=[1, 2], **kw)["protocol"]["tie_order"]


def _random_problem(rng, n_q, n_g, n_ids, n_cams):
    return dict(
        distmat=rng.random((n_q, n_g)),
        q_pids=rng.integers(0, n_ids, n_q), g_pids=rng.integers(0, n_ids, n_g),
        q_camids=rng.integers(0, n_cams, n_q), g_camids=rng.integers(0, n_cams, n_g),
    )


@pytest.mark.parametrize(("n_q", "n_g", "n_ids", "n_cams"), [(15, 60, 5, 2), (40, 300, 30, 6), (120, 900, 100, 4)])
def test_matches_torchreid_python_evaluator(n_q, n_g, n_ids, n_cams):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchreid.reid.metrics.rank import eval_market1501
    p = _random_problem(np.random.default_rng(n_g), n_q, n_g, n_ids, n_cams)
    # keep every query's kept list >= max_rank (torchreid breaks otherwise)
    max_rank = 10
    cmc, m_ap = eval_market1501(p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"], max_rank)
    r = evaluate_reid(p.pop("distmat"), max_rank=max_rank, chunk_size=7, **p)
    np.testing.assert_allclose(r["cmc"], cmc, atol=1e-6)
    assert r["mAP"] == pytest.approx(m_ap, abs=1e-6)


def test_features_match_distmat_for_both_metrics():
    import torch

    rng = np.random.default_rng(1)
    qf, gf = rng.standard_normal((20, 8)), rng.standard_normal((70, 8))
    lab = dict(q_pids=rng.integers(0, 6, 20), g_pids=rng.integers(0, 6, 70), q_camids=rng.integers(0, 3, 20),
               g_camids=rng.integers(0, 3, 70), max_rank=10)
    sq = (qf**2).sum(1)[:, None] + (gf**2).sum(1)[None] - 2 * qf @ gf.T
    qn, gn = qf / np.linalg.norm(qf, axis=1, keepdims=True), gf / np.linalg.norm(gf, axis=1, keepdims=True)
    for metric, dist in [("euclidean", sq), ("cosine", 1 - qn @ gn.T)]:
        a = evaluate_reid(query_features=torch.from_numpy(qf), gallery_features=gf, metric=metric, chunk_size=3, **lab)
        b = evaluate_reid(dist, **lab)
        assert a["mAP"] == pytest.approx(b["mAP"], abs=1e-12)
        np.testing.assert_allclose(a["cmc"], b["cmc"])
        assert a["protocol"]["metric"] == metric


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), chunk=st.integers(1, 30), n_q=st.integers(1, 25), n_g=st.integers(5, 60))
def test_invariant_to_chunks_gallery_order_and_query_batches(seed, chunk, n_q, n_g):
    rng = np.random.default_rng(seed)
    p = _random_problem(rng, n_q, n_g, 4, 3)
    p["g_camids"][:] = 1
    p["q_camids"][:] = 0  # every query has a positive unless its id is absent
    p["q_pids"] = p["g_pids"][rng.integers(0, n_g, n_q)]
    d = p.pop("distmat")
    full = evaluate_reid(d, max_rank=5, return_per_query=True, **p)
    chunked = evaluate_reid(d, max_rank=5, chunk_size=chunk, return_per_query=True, **p)
    perm = rng.permutation(n_g)
    shuffled = evaluate_reid(d[:, perm], max_rank=5, **{**p, "g_pids": p["g_pids"][perm], "g_camids": p["g_camids"][perm]})
    for other in (chunked, shuffled):
        assert other["mAP"] == pytest.approx(full["mAP"], abs=1e-12)
        assert other["mINP"] == pytest.approx(full["mINP"], abs=1e-12)
        np.testing.assert_allclose(other["cmc"], full["cmc"], atol=1e-12)
    if n_q > 1:
        cut = n_q // 2
        halves = [evaluate_reid(d[s], max_rank=5, return_per_query=True,
                                **{**p, "q_pids": p["q_pids"][s], "q_camids": p["q_camids"][s]})
                  for s in (slice(0, cut), slice(cut, None))]
        for key in ("AP", "INP", "first_hit_rank"):  # AP sums may differ in the last bit (padding width)
            np.testing.assert_allclose(np.concatenate([h["per_query"][key] for h in halves]), full["per_query"][key],
                                       rtol=0, atol=1e-12)


def test_cuhk03_single_gallery_shot_worked_example():
    # kept ranking pid1, pid2, pid2, pid1 for a pid-1 query
    kw = dict(q_pids=[1], q_camids=[0], g_pids=[1, 2, 2, 1], g_camids=[1, 1, 1, 1], max_rank=2)
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    r = evaluate_reid_cuhk03(dist, num_repeats=4000, seed=3, **kw)
    assert r["mAP"] == pytest.approx(0.75)
    assert r["cmc"][0] == pytest.approx(0.5, abs=0.04)
    assert r["cmc"][1] == 1.0  # two identities only: the own id is always within the top 2
    again = evaluate_reid_cuhk03(dist, num_repeats=4000, seed=3, **kw)
    np.testing.assert_array_equal(again["cmc"], r["cmc"])
    ten = evaluate_reid_cuhk03(dist, num_repeats=10, seed=0, **kw)
    assert ten["cmc"][0] * 10 == pytest.approx(round(ten["cmc"][0] * 10))  # a 10-repeat estimate is k/10
    assert ten["protocol"]["num_repeats"] == 10 and ten["protocol"]["seed"] == 0


def test_cuhk03_does_not_depend_on_chunk_size():
    p = _random_problem(np.random.default_rng(5), 30, 80, 8, 2)
    d = p.pop("distmat")
    a = evaluate_reid_cuhk03(d, max_rank=5, seed=1, **p)
    b = evaluate_reid_cuhk03(d, max_rank=5, seed=1, chunk_size=4, **p)
    np.testing.assert_array_equal(a["cmc"], b["cmc"])
    assert a["mAP"] == pytest.approx(evaluate_reid(d, max_rank=5, **p)["mAP"])


def _dense_rerank(qf, gf, k1, k2, lam):
    """Straightforward dense k-reciprocal re-ranking (float64), written from the paper / reference loops."""
    x = np.vstack([qf, gf])
    d = (x**2).sum(1)[:, None] + (x**2).sum(1)[None] - 2 * x @ x.T
    od = d**2
    od = od / od.max(1, keepdims=True)
    n, q = len(x), len(qf)
    rank = np.argsort(od, axis=1, kind="stable")

    def recip(i, k):
        fwd = rank[i, : k + 1]
        return np.array([j for j in fwd if i in rank[j, : k + 1]], dtype=int)

    v = np.zeros((n, n))
    for i in range(n):
        kr = recip(i, k1)
        exp = list(kr)
        for c in kr:
            ckr = recip(c, int(round(k1 / 2)))
            if len(np.intersect1d(ckr, kr)) > 2 / 3 * len(ckr):
                exp.extend(ckr)
        exp = np.unique(exp)
        w = np.exp(-od[i, exp])
        v[i, exp] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.array([[1 - np.minimum(v[i], v[j]).sum() / np.maximum(v[i], v[j]).sum() for j in range(q, n)]
                    for i in range(q)])
    return jac * (1 - lam) + od[:q, q:] * lam


@pytest.mark.parametrize(("k1", "k2", "lam"), [(20, 6, 0.3), (5, 1, 0.5), (4, 3, 0.0)])
def test_rerank_matches_dense_reimplementation(k1, k2, lam):
    rng = np.random.default_rng(k1)
    qf, gf = rng.standard_normal((12, 6)), rng.standard_normal((40, 6))
    ours = KReciprocalReranker(qf, gf, k1=k1, k2=k2, lambda_value=lam, chunk_size=7).distances()
    np.testing.assert_allclose(ours, _dense_rerank(qf, gf, k1, k2, lam), atol=1e-5)


def test_rerank_matches_torchreid_and_is_recorded():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchreid.reid.utils.rerank import re_ranking
    rng = np.random.default_rng(2)
    qf, gf = rng.standard_normal((15, 8)), rng.standard_normal((50, 8))

    def sq(a, b):
        return (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T

    ref = re_ranking(sq(qf, gf), sq(qf, qf), sq(gf, gf), k1=20, k2=6, lambda_value=0.3)
    np.testing.assert_allclose(KReciprocalReranker(qf, gf).distances(), ref, atol=1e-5)
    lab = dict(q_pids=rng.integers(0, 5, 15), g_pids=rng.integers(0, 5, 50), q_camids=np.zeros(15, int),
               g_camids=np.ones(50, int), max_rank=5)
    r = evaluate_reid(query_features=qf, gallery_features=gf, rerank=dict(k1=20, k2=6, lambda_value=0.3), **lab)
    assert r["mAP"] == pytest.approx(evaluate_reid(ref, **lab)["mAP"], abs=1e-9)
    assert r["protocol"]["rerank"]["k1"] == 20
    assert evaluate_reid(sq(qf, gf), **lab)["protocol"]["rerank"] is None


BASE = dict(q_pids=[1, 2], g_pids=[1, 2, 3], q_camids=[0, 0], g_camids=[1, 1, 1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(distmat=np.ones((2, 4))), "g_pids"),
        (dict(distmat=np.ones((3, 3))), "q_pids"),
        (dict(distmat=np.array([[0.1, np.nan, 0.3], [0.1, 0.2, 0.3]])), "distmat"),
        (dict(distmat=np.array([[0.1, np.inf, 0.3], [0.1, 0.2, 0.3]])), "distmat"),
        (dict(distmat=np.zeros((0, 3))), "distmat"),
        (dict(distmat=np.ones((2, 3)), ap="interp"), "ap"),
        (dict(distmat=np.ones((2, 3)), max_rank=0), "max_rank"),
        (dict(distmat=np.ones((2, 3)), chunk_size=0), "chunk_size"),
        (dict(query_features=np.ones((2, 4)), gallery_features=np.ones((3, 4)), metric="l1"), "metric"),
        (dict(query_features=np.ones((2, 4)), gallery_features=np.ones((3, 5))), "query_features"),
        (dict(query_features=np.full((2, 4), np.nan), gallery_features=np.ones((3, 4))), "query_features"),
        (dict(query_features=np.ones((2, 4))), "gallery_features"),
        (dict(), "distmat"),
        (dict(distmat=np.ones((2, 3)), rerank=dict(k1=2)), "rerank"),
        (dict(query_features=np.ones((2, 4)), gallery_features=np.ones((3, 4)), rerank=dict(k9=1)), "rerank"),
        (dict(query_features=np.ones((2, 4)), gallery_features=np.ones((3, 4)), rerank=dict(k1=20)), "rerank.k1"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, message):
    labels = {**BASE}
    if "distmat" in kwargs and kwargs["distmat"].shape == (3, 3):
        labels["g_pids"] = [1, 2, 3]
    with pytest.raises(ValueError, match=message):
        evaluate_reid(**{**labels, **kwargs})


def test_bad_labels_and_no_valid_query():
    with pytest.raises(MetricInputError, match="q_pids"):
        evaluate_reid(np.ones((2, 3)), **{**BASE, "q_pids": [1.5, 2]})
    with pytest.raises(ValueError, match="no query has a positive"):
        evaluate_reid(np.ones((2, 3)), **{**BASE, "q_pids": [8, 9]})
    with pytest.raises(ValueError, match="num_repeats"):
        evaluate_reid_cuhk03(np.ones((2, 3)), num_repeats=0, **BASE)
