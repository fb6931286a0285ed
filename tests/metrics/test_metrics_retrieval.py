"""IRRA-protocol retrieval metrics: worked example, features path, no-match queries, properties, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plipbench.metrics import evaluate_retrieval

SIM = np.array([[0.9, 0.8, 0.1, 0.7], [0.2, 0.6, 0.5, 0.4]])
IDS = dict(q_pids=[1, 2], g_pids=[2, 1, 2, 1])


def test_irra_worked_example():
    r = evaluate_retrieval(SIM, ks=(1, 2, 10), return_per_query=True, **IDS)
    assert r["R@1"] == 0.0 and r["R@2"] == 1.0 and r["R@10"] == 1.0
    assert r["mAP"] == pytest.approx(0.5417, abs=5e-5)
    assert r["mINP"] == pytest.approx(0.5833, abs=5e-5)
    assert r["per_query"]["AP"] == pytest.approx([(1 / 2 + 2 / 3) / 2, 0.5])
    assert r["per_query"]["INP"] == pytest.approx([2 / 3, 0.5])
    assert r["num_queries_without_match"] == 0


def _irra_reference(sim, q, g, k):
    """IRRA's rank() in NumPy (full descending sort), for tie-free data where every query has a match."""
    idx = np.argsort(-sim, axis=1, kind="stable")
    matches = (g[idx] == q[:, None]).astype(float)
    cmc = np.minimum(matches.cumsum(1), 1)[:, :k].mean(0)
    tmp = matches.cumsum(1)
    last = np.array([np.nonzero(m)[0][-1] for m in matches])
    inp = tmp[np.arange(len(q)), last] / (last + 1)
    ap = (tmp / np.arange(1, sim.shape[1] + 1) * matches).sum(1) / matches.sum(1)
    return cmc, ap.mean(), inp.mean()


def test_features_path_matches_reference_and_image_to_text_is_the_transpose():
    rng = np.random.default_rng(0)
    img = rng.standard_normal((30, 16)).astype(np.float32)
    txt = rng.standard_normal((60, 16)).astype(np.float32) * 3
    img_ids, txt_ids = np.arange(30) % 10, np.repeat(np.arange(30) % 10, 2)
    r = evaluate_retrieval(query_features=txt, gallery_features=img, q_pids=txt_ids, g_pids=img_ids, ks=(1, 5, 10),
                           chunk_size=7)
    tn = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    gn = img / np.linalg.norm(img, axis=1, keepdims=True)
    sim = (tn @ gn.T).astype(np.float64)
    cmc, m_ap, m_inp = _irra_reference(sim, txt_ids, img_ids, 10)
    assert [r["R@1"], r["R@5"], r["R@10"]] == pytest.approx([cmc[0], cmc[4], cmc[9]], abs=1e-12)
    assert r["mAP"] == pytest.approx(m_ap, abs=1e-6) and r["mINP"] == pytest.approx(m_inp, abs=1e-6)
    i2t = evaluate_retrieval(sim.T, q_pids=img_ids, g_pids=txt_ids)
    cmc, m_ap, _ = _irra_reference(sim.T, img_ids, txt_ids, 10)
    assert i2t["R@1"] == pytest.approx(cmc[0]) and i2t["mAP"] == pytest.approx(m_ap)


def test_query_without_match_counts_as_zero_never_nan():
    r = evaluate_retrieval(np.vstack([SIM, [[0.3, 0.2, 0.1, 0.0]]]), q_pids=[1, 2, 9], g_pids=IDS["g_pids"],
                           ks=(1, 2), return_per_query=True)
    assert r["num_queries_without_match"] == 1
    assert r["mAP"] == pytest.approx((0.5833333 + 0.5 + 0) / 3, abs=1e-6)
    assert r["R@2"] == pytest.approx(2 / 3)
    assert r["per_query"]["first_hit_rank"][2] == -1 and not r["per_query"]["has_match"][2]
    assert not np.isnan([r["mAP"], r["mINP"]]).any()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), chunk=st.integers(1, 20), n_q=st.integers(1, 20), n_g=st.integers(2, 40))
def test_invariant_to_chunk_size_and_gallery_order(seed, chunk, n_q, n_g):
    rng = np.random.default_rng(seed)
    sim, g = rng.random((n_q, n_g)), rng.integers(0, 5, n_g)
    q = g[rng.integers(0, n_g, n_q)]
    a = evaluate_retrieval(sim, q_pids=q, g_pids=g)
    b = evaluate_retrieval(sim, q_pids=q, g_pids=g, chunk_size=chunk)
    perm = rng.permutation(n_g)
    c = evaluate_retrieval(sim[:, perm], q_pids=q, g_pids=g[perm])
    for other in (b, c):
        for key in ("R@1", "R@5", "R@10", "mAP", "mINP"):
            assert other[key] == pytest.approx(a[key], abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(similarity=SIM, q_pids=[1], g_pids=IDS["g_pids"]), "q_pids"),
        (dict(similarity=SIM, q_pids=[1, 2], g_pids=[1, 2]), "g_pids"),
        (dict(similarity=np.where(SIM > 0.8, np.nan, SIM), **IDS), "similarity"),
        (dict(similarity=np.zeros((2, 0)), **IDS), "similarity"),
        (dict(similarity=SIM, ks=(0,), **IDS), "ks"),
        (dict(query_features=np.ones((2, 3)), **IDS), "gallery_features"),
        (dict(query_features=np.ones((2, 3)), gallery_features=np.full((4, 3), np.inf), **IDS), "gallery_features"),
        (dict(similarity=SIM, query_features=np.ones((2, 3)), **IDS), "similarity"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_retrieval(**kwargs)
