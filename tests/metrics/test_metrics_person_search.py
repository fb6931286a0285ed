"""Person search (SeqNet's evaluation): the brief's worked example, the adaptive IoU, first-match true positives,
det_thresh, CUHK-SYSU full set and duplicates, PRW cameras and duplicate pids, CBGM, cross-checks against a
loop-by-loop reference with sklearn's AP, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from plipbench.metrics import (
    Detections,
    MetricInputError,
    QueryGallery,
    cuhk_sysu_galleries,
    evaluate_cuhk_sysu,
    evaluate_person_search,
    evaluate_prw,
)
from plipbench.metrics.person_search import adaptive_iou_threshold, sklearn_average_precision

A, B = [0, 0, 40, 100], [50, 0, 90, 100]  # two persons side by side, IoU 0


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)[:, None]  # 1-D features: the similarity is the feature itself


def one_query(gallery, images, targets, **kw) -> dict:
    return evaluate_person_search(np.ones((1, 1)), gallery, [QueryGallery(np.asarray(images), targets)], **kw)


# ------------------------------------------------------------------------------------- reference, loop by loop


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def max_weight_matching(weights: np.ndarray) -> list[tuple[int, int]]:
    """Brute force over every assignment of the smaller side (the reference's Kuhn-Munkres optimum)."""
    n, m = weights.shape
    best, pairs = -np.inf, []
    if n <= m:
        for cols in itertools.permutations(range(m), n):
            total = sum(weights[r, c] for r, c in enumerate(cols))
            if total > best:
                best, pairs = total, list(enumerate(cols))
    else:
        for rows in itertools.permutations(range(n), m):
            total = sum(weights[r, c] for c, r in enumerate(rows))
            if total > best:
                best, pairs = total, [(r, c) for c, r in enumerate(rows)]
    return pairs


def reference_query(feat_q, dets, protocol, extra_negatives=(), det_thresh=0.5, cbgm=None):
    """One query of ``eval_search_cuhk`` as more-tasks.md §1.4 describes it. ``protocol``: [(image, target box or
    None)], boxes [x1, y1, x2, y2]; ``dets``: image -> (boxes, scores, feats); ``extra_negatives``: images scored
    as negatives first (SeqNet's full-set loop); ``cbgm``: (context feats, k1, k2)."""
    kept = {}
    for img, (b, s, f) in dets.items():
        keep = np.asarray(s) >= det_thresh
        if keep.any():
            kept[img] = (np.asarray(b, float)[keep], np.asarray(f, float)[keep])
    y_true, y_score, count_gt, count_tp = [], [], 0, 0
    for img in extra_negatives:
        if img in kept:
            sim = kept[img][1] @ feat_q
            y_true += [0] * len(sim)
            y_score += list(sim)
    name2sim, name2gt = {}, {}
    for img, gt in protocol:
        count_gt += gt is not None
        if img not in kept or img in name2sim:
            continue
        name2sim[img] = kept[img][1] @ feat_q
        name2gt[img] = gt
    if cbgm is not None:
        context, k1, k2 = cbgm
        sims = np.concatenate(list(name2sim.values()))
        names = np.concatenate([[img] * len(s) for img, s in name2sim.items()])
        for img in set(names[np.argsort(sims, kind="stable")[-k1:]].tolist()):
            w = context[:k2] @ kept[img][1].T
            pairs = max_weight_matching(w)
            max_val = max(w[r, c] for r, c in pairs)
            for r, c in pairs:
                if r == 0:
                    name2sim[img][c] = max_val
    for img, sim in name2sim.items():
        gt, boxes = name2gt[img], kept[img][0]
        label = np.zeros(len(sim), dtype=int)
        if gt is not None:
            w, h = gt[2] - gt[0], gt[3] - gt[1]
            thr = min(0.5, w * h / ((w + 10) * (h + 10)))
            order = np.argsort(sim, kind="stable")[::-1]
            sim, boxes = sim[order], boxes[order]
            for j, roi in enumerate(boxes):
                if iou(roi, gt) >= thr:
                    label[j] = 1
                    count_tp += 1
                    break
        y_true += list(label)
        y_score += list(sim)
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    recall = count_tp / count_gt
    ap = 0.0 if count_tp == 0 else average_precision_score(y_true, y_score) * recall
    order = np.argsort(y_score, kind="stable")[::-1]
    return ap, [min(1, int(y_true[order][:k].sum())) for k in (1, 5, 10)]


# ------------------------------------------------------------------------------------- golden cases


def test_the_worked_example_of_the_brief() -> None:
    gallery = [Detections.from_boxes([A], col(0.9)), Detections.from_boxes([A, B], col(0.8, 0.7)),
               Detections.from_boxes([B], col(0.6)), Detections.from_boxes([A], col(0.5))]
    r = one_query(gallery, range(4), {0: [A], 1: [B], 2: [A]})
    # y_score [0.9, 0.8, 0.7, 0.6, 0.5], y_true [1, 0, 1, 0, 0]: sklearn AP 0.8333 x recall 2/3
    assert average_precision_score([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5]) == pytest.approx(5 / 6)
    assert r["per_query_recall"][0] == pytest.approx(2 / 3)
    assert r["mAP"] == pytest.approx(5 / 6 * 2 / 3) and round(r["mAP"], 4) == 0.5556
    assert r["top-1"] == r["top-5"] == r["top-10"] == 1.0
    assert r["num_queries"] == 1 and r["num_skipped"] == 0
    p = r["protocol"]
    assert p["det_thresh"] == 0.5 and p["cbgm"] is False and p["top_k"] == [1, 5, 10]
    assert "min(0.5" in p["iou_threshold"] and "first detection" in p["true_positive"]


def test_adaptive_iou_threshold_lets_a_small_box_match_below_one_half() -> None:
    assert adaptive_iou_threshold(10, 20) == pytest.approx(200 / 600)
    assert adaptive_iou_threshold(100, 200) == 0.5
    small, det = [0, 0, 10, 20], [0, 0, 10, 8]  # IoU 0.4, the small box's threshold 1/3
    assert iou(det, small) == pytest.approx(0.4)
    r = one_query([Detections.from_boxes([det], col(0.9))], [0], {0: [small]})
    assert r["mAP"] == 1.0 and r["top-1"] == 1.0
    big, det = [0, 0, 100, 200], [0, 0, 100, 80]  # IoU 0.4 again, threshold 0.5
    r = one_query([Detections.from_boxes([det], col(0.9))], [0], {0: [big]})
    assert r["mAP"] == 0.0 and r["top-1"] == 0.0


def test_only_the_first_matching_detection_of_an_image_is_a_true_positive() -> None:
    near = [0, 0, 40, 95]  # IoU 0.95 with A
    gallery = [Detections.from_boxes([B, near, A], col(0.95, 0.9, 0.8))]
    r = one_query(gallery, [0], {0: [A]})
    # order by similarity: B (0.95, miss), near (0.9, hit), A (0.8, a second overlap: stays negative)
    assert r["mAP"] == pytest.approx(average_precision_score([0, 1, 0], [0.95, 0.9, 0.8]))
    assert r["mAP"] == pytest.approx(0.5) and r["top-1"] == 0.0 and r["top-5"] == 1.0


def test_a_query_with_no_detection_on_its_target_scores_zero() -> None:
    gallery = [Detections.from_boxes([B], col(0.9)), Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 1)))]
    r = one_query(gallery, [0, 1], {0: [A], 1: [A]})
    assert r["mAP"] == 0.0 and r["top-10"] == 0.0 and r["per_query_recall"][0] == 0.0


def test_a_target_image_without_kept_detections_still_counts_in_the_recall() -> None:
    gallery = [Detections.from_boxes([A], col(0.9)), Detections([A], [0.3], col(0.99))]  # score below 0.5
    r = one_query(gallery, [0, 1], {0: [A], 1: [A]})
    assert r["per_query_recall"][0] == 0.5 and r["mAP"] == pytest.approx(0.5)


def test_det_thresh_drops_low_scoring_detections() -> None:
    gallery = [Detections([A, B], [0.4, 0.9], col(0.5, 0.8)), Detections([A], [0.6], col(0.7))]
    default = one_query(gallery, [0, 1], {0: [A], 1: [A]})
    # at 0.5 the hit in image 0 (score 0.4) is gone: boxes B 0.8 (neg), A 0.7 (pos)
    assert default["per_query_recall"][0] == 0.5 and default["mAP"] == pytest.approx(0.5 * 0.5)
    low = one_query(gallery, [0, 1], {0: [A], 1: [A]}, det_thresh=0.3)
    assert low["per_query_recall"][0] == 1.0
    assert low["mAP"] == pytest.approx(average_precision_score([0, 1, 1], [0.8, 0.5, 0.7]))
    assert low["protocol"]["det_thresh"] == 0.3


def test_confidence_weighted_similarity_multiplies_by_the_score() -> None:
    gallery = [Detections([A], [0.6], col(1.0)), Detections([B], [1.0], col(0.7))]
    plain = one_query(gallery, [0, 1], {0: [A]})
    cws = one_query(gallery, [0, 1], {0: [A]}, confidence_weighted=True)
    assert plain["top-1"] == 1.0 and cws["top-1"] == 0.0  # 1.0 x 0.6 < 0.7
    assert cws["protocol"]["confidence_weighted"] is True


def test_ties_are_grouped_for_ap_and_ordered_later_first_for_top_k() -> None:
    gallery = [Detections.from_boxes([A], col(0.5)), Detections.from_boxes([A], col(0.5))]
    r = one_query(gallery, [0, 1], {0: [A]})
    assert r["mAP"] == pytest.approx(average_precision_score([1, 0], [0.5, 0.5])) == pytest.approx(0.5)
    assert r["top-1"] == 0.0  # the later tied box (image 1, a negative) comes first
    r = one_query(gallery, [0, 1], {1: [A]})
    assert r["top-1"] == 1.0


# ------------------------------------------------------------------------------------- cross-checks


def random_case(rng, n_images=12, dim=4, quantize=None):
    feats, dets, gallery = {}, {}, []
    for img in range(n_images):
        n = int(rng.integers(0, 4))
        xy = rng.uniform(0, 60, size=(n, 2))
        wh = rng.uniform(5, 40, size=(n, 2))
        boxes = np.hstack([xy, xy + wh])
        scores = rng.uniform(0.2, 1.0, size=n)
        f = rng.normal(size=(n, dim))
        if quantize:
            f = np.round(f * quantize) / quantize
        dets[img] = (boxes, scores, f)
        gallery.append(Detections(boxes if n else np.zeros((0, 4)), scores, f if n else np.zeros((0, dim))))
        feats[img] = f
    return dets, gallery


def random_target(rng, boxes):
    if len(boxes) and rng.random() < 0.7:  # near a detection, sometimes below the threshold
        b = boxes[int(rng.integers(len(boxes)))]
        return (b + rng.normal(scale=4, size=4)).clip(0, None).tolist() if rng.random() < 0.5 else b.tolist()
    x, y = rng.uniform(0, 60, size=2)
    return [x, y, x + rng.uniform(5, 30), y + rng.uniform(5, 30)]


@pytest.mark.parametrize("quantize", [None, 2])
def test_matches_the_reference_loop_and_sklearn_on_random_galleries(quantize) -> None:
    rng = np.random.default_rng(0 if quantize is None else 1)
    for _ in range(25):
        dets, gallery = random_case(rng, quantize=quantize)
        q = rng.normal(size=(3, 4))
        if quantize:
            q = np.round(q * quantize) / quantize  # ties between boxes
        galleries, expected = [], []
        for i in range(3):
            images = rng.permutation(len(gallery))[: int(rng.integers(3, len(gallery)))]
            n_t = int(rng.integers(1, 4))
            targets = {}
            for img in images[:n_t].tolist():
                t = random_target(rng, dets[img][0])
                if t[2] > t[0] and t[3] > t[1]:
                    targets[img] = [t]
            if not targets:
                targets = {int(images[0]): [[0, 0, 10, 10]]}
            galleries.append(QueryGallery(images, targets))
            protocol = [(img, targets[img][0] if img in targets else None) for img in images.tolist()]
            expected.append(reference_query(q[i], dets, protocol))
        for chunk in (None, 1):  # the dense product and the per-query gather
            kw = {} if chunk is None else {"chunk_bytes": chunk}
            r = evaluate_person_search(q, gallery, galleries, **kw)
            np.testing.assert_allclose(r["per_query_ap"], [e[0] for e in expected], rtol=1e-12, atol=1e-12)
            assert r["top-1"] == pytest.approx(np.mean([e[1][0] for e in expected]))
            assert r["top-5"] == pytest.approx(np.mean([e[1][1] for e in expected]))
            assert r["top-10"] == pytest.approx(np.mean([e[1][2] for e in expected]))


def test_the_ap_core_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        scores = np.round(rng.uniform(size=n) * 4) / 4
        y = rng.random(n) < 0.3
        if not y.any():
            y[int(rng.integers(n))] = True
        assert sklearn_average_precision(scores, np.flatnonzero(y)) == pytest.approx(
            average_precision_score(y, scores), abs=1e-12)


# ------------------------------------------------------------------------------------- CUHK-SYSU galleries


def cuhk_case():
    """Pool of 5 images; the query's own image is 0; TestG-style gallery [1 (target), 2]; 3 and 4 outside it."""
    gallery = [Detections.from_boxes([A], col(0.1)), Detections.from_boxes([A, B], col(0.6, 0.95)),
               Detections.from_boxes([A], col(0.9)), Detections.from_boxes([B], col(0.7)),
               Detections.from_boxes([A], col(0.2))]
    return gallery, [np.array([1, 2])], [{0: A}]


def test_cuhk_sysu_protocol_gallery() -> None:
    gallery, images, targets = cuhk_case()
    r = evaluate_cuhk_sysu(np.ones((1, 1)), gallery, images, targets, gallery_size=100)
    # boxes: image 1 sorted (B 0.95 neg, A 0.6 pos), image 2 (0.9 neg)
    assert r["mAP"] == pytest.approx(average_precision_score([0, 1, 0], [0.95, 0.6, 0.9]))
    assert r["top-1"] == 0.0 and r["top-5"] == 1.0
    assert r["protocol"]["dataset"] == "cuhk-sysu" and r["protocol"]["gallery_size"] == 100
    assert "full_set_counting" not in r["protocol"]


def test_cuhk_sysu_full_set_counts_every_image_once_and_seqnet_counts_the_protocol_twice() -> None:
    gallery, images, targets = cuhk_case()
    oim = evaluate_cuhk_sysu(np.ones((1, 1)), gallery, images, targets, gallery_size=-1, query_images=[0])
    # protocol (0.95 neg, 0.6 pos, 0.9 neg) + remaining images 3 (0.7), 4 (0.2); the query image 0 left out
    by_hand = average_precision_score([0, 1, 0, 0, 0], [0.95, 0.6, 0.9, 0.7, 0.2])
    assert by_hand == pytest.approx(0.25)
    assert oim["mAP"] == pytest.approx(by_hand) and oim["protocol"]["full_set_counting"] == "oim"
    seqnet = evaluate_cuhk_sysu(np.ones((1, 1)), gallery, images, targets, gallery_size=-1, query_images=[0],
                                full_set_counting="seqnet")
    # images 1..4 first as negatives (1 and 2 again), then the protocol images
    y_true = [0, 0, 0, 0, 0, 0, 1, 0]
    y_score = [0.6, 0.95, 0.9, 0.7, 0.2, 0.95, 0.6, 0.9]
    # 7 boxes score >= 0.6, the positive tied with its own negative copy
    assert seqnet["mAP"] == pytest.approx(average_precision_score(y_true, y_score)) == pytest.approx(1 / 7)
    assert seqnet["mAP"] < oim["mAP"]
    ref = reference_query(np.ones(1), {i: (d.boxes, d.scores, d.features) for i, d in enumerate(gallery)},
                          [(1, A), (2, None)], extra_negatives=[1, 2, 3, 4])
    assert seqnet["mAP"] == pytest.approx(ref[0])


def test_cuhk_sysu_full_set_needs_the_query_images() -> None:
    gallery, images, targets = cuhk_case()
    with pytest.raises(MetricInputError, match="query_images: required"):
        evaluate_cuhk_sysu(np.ones((1, 1)), gallery, images, targets, gallery_size=-1)
    with pytest.raises(MetricInputError, match="gallery_size: unknown value 77"):
        evaluate_cuhk_sysu(np.ones((1, 1)), gallery, images, targets, gallery_size=77)


def test_a_duplicate_gallery_entry_counts_once_unless_seqnet() -> None:
    gallery, _, _ = cuhk_case()
    images, targets = [np.array([1, 2, 1])], [{0: A, 2: A}]
    once = evaluate_cuhk_sysu(np.ones((1, 1)), gallery, images, targets)
    assert once["per_query_recall"][0] == 1.0
    seqnet = evaluate_cuhk_sysu(np.ones((1, 1)), gallery, images, targets, duplicate_entries="seqnet")
    assert seqnet["per_query_recall"][0] == 0.5 and seqnet["mAP"] == pytest.approx(once["mAP"] / 2)
    g = cuhk_sysu_galleries(images, targets, num_gallery_images=5)[0]
    assert g.images.tolist() == [1, 2] and g.num_targets == 1


# ------------------------------------------------------------------------------------- PRW galleries


def prw_case():
    """Five frames; query pid 7 in frame 0 (camera 1); pid 7 also in frames 1 (camera 1) and 3 (camera 2)."""
    pids = [np.array([7, -1]), np.array([7]), np.array([-1]), np.array([-1, 7]), np.array([3])]
    boxes = [np.array([A, B]), np.array([A]), np.array([A]), np.array([A, B]), np.array([B])]
    cams = [1, 1, 2, 2, 3]
    feats = [col(1.0, 0.1), col(0.8), col(0.9), col(0.3, 0.6), col(0.5)]
    gallery = [Detections.from_boxes(b, f) for b, f in zip(boxes, feats, strict=True)]
    return gallery, pids, boxes, cams


def test_prw_same_camera_frames_are_in_the_gallery_by_default() -> None:
    gallery, pids, boxes, cams = prw_case()
    r = evaluate_prw(np.ones((1, 1)), gallery, [0], [7], [1], pids, boxes, cams)
    # frames 1..4: 0.8 pos | 0.9 neg | 0.6 pos (B of frame 3), 0.3 neg | 0.5 neg; the query frame 0 left out
    assert r["per_query_recall"][0] == 1.0
    assert r["mAP"] == pytest.approx(average_precision_score([1, 0, 1, 0, 0], [0.8, 0.9, 0.6, 0.3, 0.5]))
    assert r["top-1"] == 0.0 and r["top-5"] == 1.0
    assert r["protocol"]["ignore_cam_id"] is True and r["protocol"]["dataset"] == "prw"


def test_prw_cross_camera_only() -> None:
    gallery, pids, boxes, cams = prw_case()
    r = evaluate_prw(np.ones((1, 1)), gallery, [0], [7], [1], pids, boxes, cams, ignore_cam_id=False)
    # frame 1 (same camera) left out: frames 2, 3, 4
    assert r["mAP"] == pytest.approx(average_precision_score([0, 1, 0, 0], [0.9, 0.6, 0.3, 0.5]))
    assert r["protocol"]["ignore_cam_id"] is False and "other cameras" in r["protocol"]["gallery"]


def test_prw_query_without_a_target_in_its_gallery_is_skipped() -> None:
    gallery, pids, boxes, cams = prw_case()
    # pid 3 only in frame 4, which is the query's own frame: nothing to find (the reference divides by zero)
    r = evaluate_prw(np.ones((2, 1)), gallery, [0, 4], [7, 3], [1, 3], pids, boxes, cams)
    assert r["num_queries"] == 1 and r["num_skipped"] == 1 and np.isnan(r["per_query_ap"][1])
    with pytest.raises(MetricInputError, match="no query has a target"):
        evaluate_prw(np.ones((1, 1)), gallery, [4], [3], [3], pids, boxes, cams)


def test_prw_duplicate_pid_in_one_frame() -> None:
    gallery = [Detections.from_boxes([A], col(1.0)), Detections.from_boxes([A, B], col(0.2, 0.9))]
    pids, boxes = [np.array([5]), np.array([5, 5])], [np.array([A]), np.array([A, B])]
    first = evaluate_prw(np.ones((1, 1)), gallery, [0], [5], [1], pids, boxes, [1, 2])
    # the reference's target is A only: B (0.9) is a negative, A (0.2) the hit
    assert first["mAP"] == pytest.approx(0.5) and first["top-1"] == 0.0
    any_ = evaluate_prw(np.ones((1, 1)), gallery, [0], [5], [1], pids, boxes, [1, 2], duplicate_pid="any")
    assert any_["mAP"] == 1.0 and any_["top-1"] == 1.0 and any_["protocol"]["duplicate_pid"] == "any"


# ------------------------------------------------------------------------------------- CBGM


def test_cbgm_gives_the_query_box_match_the_largest_matched_weight() -> None:
    # 2-D features; the query's context: the query box [1, 0] and a companion [0, 1]
    context = [np.array([[1.0, 0.0], [0.0, 1.0]])]
    target = Detections.from_boxes([A, B], np.array([[0.5, 0.0], [0.0, 1.0]]))  # the query person and companion
    distractor = Detections.from_boxes([A], np.array([[0.6, 0.0]]))
    gallery = [target, distractor]
    plain = evaluate_person_search(np.array([[1.0, 0.0]]), gallery, [QueryGallery(np.arange(2), {0: [A]})])
    assert plain["top-1"] == 0.0  # 0.6 beats 0.5
    r = evaluate_person_search(np.array([[1.0, 0.0]]), gallery, [QueryGallery(np.arange(2), {0: [A]})], cbgm=True,
                               k1=10, k2=2, query_context=context)
    # image 0: matching {query-A 0.5, companion-B 1.0}; the query box's match A gets max 1.0 > 0.6
    assert r["top-1"] == 1.0 and r["mAP"] == 1.0
    assert r["protocol"]["cbgm"] is True and r["protocol"]["k1"] == 10 and r["protocol"]["k2"] == 2
    with pytest.raises(MetricInputError, match="query_context"):
        evaluate_person_search(np.ones((1, 2)), gallery, [QueryGallery(np.arange(2), {0: [A]})], cbgm=True)


def test_cbgm_matches_the_reference_loop() -> None:
    rng = np.random.default_rng(5)
    for _ in range(15):
        dets, gallery = random_case(rng, n_images=8, dim=3)
        q = rng.normal(size=(2, 3))
        contexts = [np.vstack([q[i], rng.normal(size=(int(rng.integers(0, 4)), 3))]) for i in range(2)]
        galleries, expected = [], []
        for i in range(2):
            images = rng.permutation(8)[:6]
            t = random_target(rng, dets[int(images[0])][0])
            targets = {int(images[0]): [t]} if t[2] > t[0] and t[3] > t[1] else {int(images[0]): [[0, 0, 9, 9]]}
            galleries.append(QueryGallery(images, targets))
            protocol = [(img, targets[img][0] if img in targets else None) for img in images.tolist()]
            expected.append(reference_query(q[i], dets, protocol, cbgm=(contexts[i], 4, 3)))
        r = evaluate_person_search(q, gallery, galleries, cbgm=True, k1=4, k2=3, query_context=contexts)
        np.testing.assert_allclose(r["per_query_ap"], [e[0] for e in expected], atol=1e-12)
        assert r["top-1"] == pytest.approx(np.mean([e[1][0] for e in expected]))


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a.update(query_features=np.ones((1, 2))), r"gallery\[0\].features: shape \(1, 1\), expected \(1, 2\)"),
    (lambda a: a.update(query_features=np.array([[np.nan]])), "query_features: contains NaN"),
    (lambda a: a.update(gallery=[Detections([A], [0.9, 0.8], col(1.0))]), r"gallery\[0\].scores: 2 scores for 1 boxes"),
    (lambda a: a.update(gallery=[Detections([[0, 0, 1]], [0.9], col(1.0))]), r"gallery\[0\].boxes: expected boxes of 4"),
    (lambda a: a.update(gallery=[Detections([A], [0.9], col(np.inf))]), r"gallery\[0\].features: contains NaN"),
    (lambda a: a.update(gallery=[Detections([[10, 0, 5, 9]], [0.9], col(1.0))]), r"gallery\[0\].boxes: a box has x2 < x1"),
    (lambda a: a.update(gallery=["x"]), r"gallery\[0\]: expected Detections"),
    (lambda a: a.update(gallery=[]), "gallery: no gallery image"),
    (lambda a: a.update(galleries=[]), "galleries: 0 galleries for 1 queries"),
    (lambda a: a.update(galleries=[QueryGallery([3], {})]), r"galleries\[0\].images: image index 3 outside 0..0"),
    (lambda a: a.update(galleries=[QueryGallery([0, 0], {})]), "listed twice"),
    (lambda a: a.update(galleries=[QueryGallery([0], {1: [A]})]), "image 1 is not in the query's images"),
    (lambda a: a.update(galleries=[QueryGallery([0], {0: [[5, 5, 5, 9]]})]), "x2 > x1 and y2 > y1"),
    (lambda a: a.update(galleries=[QueryGallery([0], {0: [A]}, num_targets=0)]), "num_targets: expected an integer >= 1"),
    (lambda a: a.update(galleries=[(0,)]), r"galleries\[0\]: expected a QueryGallery"),
    (lambda a: a.update(det_thresh=float("nan")), "det_thresh: expected a finite number"),
    (lambda a: a.update(k1=0), "k1: expected an integer >= 1"),
])
def test_bad_input_is_one_line_naming_the_argument(change, message) -> None:
    args = {"query_features": np.ones((1, 1)), "gallery": [Detections.from_boxes([A], col(1.0))],
            "galleries": [QueryGallery([0], {0: [A]})]}
    change(args)
    kw = {k: args.pop(k) for k in ("det_thresh", "k1") if k in args}
    with pytest.raises(MetricInputError, match=message) as err:
        evaluate_person_search(args["query_features"], args["gallery"], args["galleries"], **kw)
    assert "\n" not in str(err.value)


def test_bad_dataset_arguments() -> None:
    gallery, pids, boxes, cams = prw_case()
    with pytest.raises(MetricInputError, match=r"query_frames\[0\]: 9 is not a gallery image index"):
        evaluate_prw(np.ones((1, 1)), gallery, [9], [7], [1], pids, boxes, cams)
    with pytest.raises(MetricInputError, match="duplicate_pid: unknown value 'all'"):
        evaluate_prw(np.ones((1, 1)), gallery, [0], [7], [1], pids, boxes, cams, duplicate_pid="all")
    with pytest.raises(MetricInputError, match="gallery: 4 images, but 5 annotated frames"):
        evaluate_prw(np.ones((1, 1)), gallery[:4], [0], [7], [1], pids, boxes, cams)
    g, images, targets = cuhk_case()
    with pytest.raises(MetricInputError, match="full_set_counting: unknown value"):
        evaluate_cuhk_sysu(np.ones((1, 1)), g, images, targets, gallery_size=-1, query_images=[0],
                           full_set_counting="glcnet")
    with pytest.raises(MetricInputError, match=r"protocol_targets\[0\]: entry 5 outside the 2"):
        evaluate_cuhk_sysu(np.ones((1, 1)), g, images, [{5: A}])


def test_torch_and_float16_inputs_and_lazy_galleries() -> None:
    torch = pytest.importorskip("torch")
    gallery = [Detections.from_boxes(torch.tensor([A]), torch.tensor([[0.9]], dtype=torch.float16)),
               Detections.from_boxes([B], col(0.95))]
    r = evaluate_person_search(torch.ones(1, 1), gallery, [QueryGallery(np.arange(2), {0: [A]})])
    assert r["mAP"] == pytest.approx(0.5) and r["top-5"] == 1.0
    galleries = cuhk_sysu_galleries([np.array([1, 2]), np.array([2])], [{0: A}, {0: A}], num_gallery_images=3)
    assert len(galleries) == 2 and galleries[-1].images.tolist() == [2] and len(galleries[0:2]) == 2
    with pytest.raises(IndexError):
        galleries[2]
