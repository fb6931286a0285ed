"""Person search protocols (task kind ``person-search``) on CUHK-SYSU and PRW layouts.

``gt-boxes`` is the oracle-detector mode that OIM (``--use_gt``) and SeqNet (``EVAL_USE_GT``) ship: the
gallery "detections" of a scene image are all its annotated boxes, unlabelled persons included (they are
the negatives next to the target), each with score 1, so every target is found (recall 1) and the score is
plain AP / CMC over the boxes of the query's gallery images. What differs from SeqNet's ``EVAL_USE_GT``: the
embeddings are not RoIAligned from a fine-tuned scene feature map at 900-1500 px but come from the *frozen*
backbone on each box cut from its image and resized to the backbone's input (its own transform, as a person
crop of a ReID set would be), L2-normalised and compared by dot product; the query's embedding comes from
its ground-truth box the same way. So the numbers compare backbones with each other under a two-step
(oracle detector + frozen embedder) search; they are not comparable with the published end-to-end tables.

Scoring is plipbench's port of SeqNet's ``eval_search_cuhk`` / ``eval_search_prw``
(:func:`plipbench.metrics.evaluate_cuhk_sysu`, :func:`plipbench.metrics.evaluate_prw`): the adaptive IoU
threshold, first-match true positives, AP x recall and top-1/5/10 (reported as ``R@1``, ``R@5``, ``R@10``).
The CUHK-SYSU gallery size is the reader option ``gallery_size`` of the task's dataset (100 by default, the
reported setting). Metric options: ``det_thresh`` (0.5, the reference's; every box has score 1),
``ignore_cam_id`` (PRW only, True: same-camera frames stay in the gallery, the reference's default) and
``cbgm`` (False; True re-scores with SeqNet's context bipartite graph matching, the query image's other
boxes as its context).
"""

from __future__ import annotations

from typing import Any

from plipbench.errors import ConfigError, DataError
from plipbench.evaluation.protocols._training import (
    Stopwatch,
    check_bool,
    check_float,
    resolve_metric_options,
    resolve_options,
)
from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput
from plipbench.evaluation.protocols.options import GtBoxesOptions

PERSON_SEARCH_METRIC_DEFAULTS: dict[str, Any] = {"det_thresh": 0.5, "ignore_cam_id": True, "cbgm": False}
CROP_RULE = ("each annotated box cut from its image (rounded to whole pixels, clipped to the image), then the "
             "backbone's own image transform (resize, mean, std); features L2-normalised, dot-product similarity")


def _check(ctx: ProtocolContext) -> dict[str, Any]:
    resolve_options(ctx, GtBoxesOptions)  # none: its knobs are the reader's and the metric's options
    return check_search_inputs(ctx)


def check_search_inputs(ctx: ProtocolContext) -> dict[str, Any]:
    """The metric options checked and completed, and the task's dataset checked to be a person-search one."""
    from plipbench.data.readers.person_search import PersonSearchDataset

    metric = resolve_metric_options(ctx, PERSON_SEARCH_METRIC_DEFAULTS)
    check_float(ctx, metric, "det_thresh")
    if metric["det_thresh"] > 1.0:  # every ground-truth box has score 1: a higher threshold drops them all
        raise ConfigError(f"task {ctx.task.name}: metric option det_thresh must be <= 1 with ground-truth boxes "
                          f"(score 1), got {metric['det_thresh']}")
    check_bool(ctx, metric, "ignore_cam_id")
    check_bool(ctx, metric, "cbgm")
    if not isinstance(ctx.data.target, PersonSearchDataset):
        raise ConfigError(f"task {ctx.task.name}: a person-search task needs a cuhk-sysu or prw dataset, got layout "
                          f"{ctx.data.target.layout}")
    return metric


def _normalised(x: Any) -> Any:
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def gt_boxes(ctx: ProtocolContext) -> ProtocolOutput:
    """See the module docstring."""
    import numpy as np

    from plipbench.metrics.person_search import Detections

    metric = _check(ctx)
    data = ctx.data.target
    if not data.gallery or not data.queries:
        raise DataError(data.root, f"task {ctx.task.name}: the {'gallery' if not data.gallery else 'query'} split "
                                   f"is empty")
    clock = Stopwatch()
    crops = [(s.image_path, box) for s in data.gallery for box in s.boxes]
    crops += [(q.image_path, q.box) for q in data.queries]
    with clock("features"):
        feats = _normalised(ctx.features.crop_features(crops).numpy())
    n_gallery_boxes = len(crops) - len(data.queries)
    gallery_feats, query_feats = feats[:n_gallery_boxes], feats[n_gallery_boxes:]
    starts = np.cumsum([0] + [len(s.boxes) for s in data.gallery])
    gallery = [Detections.from_boxes(s.boxes, gallery_feats[starts[i]:starts[i + 1]])
               for i, s in enumerate(data.gallery)]
    context = None
    if metric["cbgm"]:  # the query box first, then the other boxes of its image
        context = []
        for q, f in zip(data.queries, query_feats, strict=True):
            i = q.gallery_index
            others = gallery_feats[starts[i]:starts[i + 1]] if i >= 0 else np.zeros((0, feats.shape[1]))
            if i >= 0:
                same = np.all(np.asarray(data.gallery[i].boxes) == np.asarray(q.box), axis=1)
                others = others[~same]
            context.append(np.concatenate([f[None], others]))
    with clock("score"):
        output = score_search(ctx, metric, query_feats, gallery, context)
    unlabeled = int(sum(int((s.pids < 0).sum()) for s in data.gallery))
    d = output.details
    output.details = {"num_queries": d["num_queries"], "num_skipped_queries": d["num_skipped_queries"],
                      "gallery_images": d["gallery_images"], "gallery_boxes": n_gallery_boxes,
                      "unlabeled_gallery_boxes": unlabeled, "top_k_names": d["top_k_names"]}
    output.metric_protocol |= {"detections": "ground-truth boxes, score 1 (oracle detector)", "crop": CROP_RULE}
    output.options = {
        "detections": "ground-truth boxes, score 1 (oracle detector)",
        "gallery_size": output.options["gallery_size"],
        "det_thresh": float(metric["det_thresh"]),
        "ignore_cam_id": output.options["ignore_cam_id"],
        "cbgm": bool(metric["cbgm"]),
        "crop": CROP_RULE,
        "input_size": list(ctx.backbone.image_transform.size),
    }
    output.timings = clock.timings
    return output


def score_search(ctx: ProtocolContext, metric: dict[str, Any], query_feats: Any, gallery: list[Any],
                 context: list[Any] | None) -> ProtocolOutput:
    """Scores of ``query_feats`` against the gallery frames' :class:`~plipbench.metrics.person_search.Detections`
    by the SeqNet port (CUHK-SYSU or PRW by the layout), as a protocol output: mAP, R@1/5/10, and per scored
    query its AP and first-hit rank (the leaderboard's bootstrap resamples queries)."""
    import numpy as np

    from plipbench.metrics import evaluate_cuhk_sysu, evaluate_prw

    data = ctx.data.target
    inputs = data.evaluation_inputs()
    common = {"det_thresh": float(metric["det_thresh"]), "cbgm": metric["cbgm"], "query_context": context}
    if data.layout == "cuhk-sysu":
        result = evaluate_cuhk_sysu(query_feats, gallery, **inputs, **common)
    else:
        result = evaluate_prw(query_feats, gallery, **inputs, ignore_cam_id=metric["ignore_cam_id"], **common)
    scores = {"mAP": result["mAP"], "R@1": result["top-1"], "R@5": result["top-5"], "R@10": result["top-10"]}
    scored = ~np.isnan(result["per_query_ap"])
    options = {
        "gallery_size": data.options.get("gallery_size") if data.layout == "cuhk-sysu" else "all test frames but the "
                                                                                          "query's own",
        "ignore_cam_id": bool(metric["ignore_cam_id"]) if data.layout == "prw" else None,
    }
    return ProtocolOutput(
        scores=scores,
        per_query={"AP": result["per_query_ap"][scored], "first_hit_rank": result["per_query_first_hit_rank"][scored]},
        details={"num_queries": result["num_queries"], "num_skipped_queries": result["num_skipped"],
                 "gallery_images": len(data.gallery), "top_k_names": {"R@1": "top-1", "R@5": "top-5",
                                                                      "R@10": "top-10"}},
        metric_protocol=dict(result["protocol"]),
        options=options,
        selection_split=None,
        zero_shot=True,
    )
