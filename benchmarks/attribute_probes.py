"""Attribute linear-probe variants on frozen backbones: can any linear probe tell a pre-trained model from its floor?

    python benchmarks/attribute_probes.py MODEL [MODEL ...] [--probe-seeds 0,1,2,...] [--threads 2]

MODEL is a backbone spec (``plip:DIR`` for a pre-trained mini model, e.g. the ones ``plipbench bench --suite mini``
leaves under ``$PLIPBENCH_CACHE/pretrain/*/model``; ``random:plip-mini``). On the synth-pa100k twin (the mini
suite's attribute task, generated into ``$PLIPBENCH_CACHE`` if missing) it extracts three frozen features per image:

* ``emb``: the backbone's embedding (what the suite's linear probe uses);
* ``pool``: the last dense map (before the attention pool for PLIP's ModifiedResNet), average-pooled;
* ``pool2``: the second-to-last dense map, average-pooled;

and fits on each:

* ``wbce``: the suite's probe (weighted BCE of Rethinking_of_PAR, Adam, 20 epochs, best val mA);
* ``wbce-e50``: the same, 50 epochs at lr 3e-3;
* ``wbce-last``: 30 epochs at lr 3e-3, last epoch (no val selection);
* ``wlr``: the weighted BCE as a convex problem (L2, full-batch L-BFGS), C from {1e-3, 1e-2, 0.1, 1} by val mA,
  refit on train + val: no optimiser noise, no epoch selection.

It prints test mA (%) per model and variant. Used for issue 11's question whether the attribute linear probe of the
mini suite can separate the floor from the pre-trained models (it cannot: see the README).
"""

from __future__ import annotations

import argparse


def features(spec: str, splits: dict[str, list]) -> dict[str, dict[str, object]]:
    import torch

    from plipbench.evaluation.features import RecordImages
    from plipbench.models import create_backbone
    from plipbench.models.backbone import build_torchvision_transform
    from plipbench.models.dense import encode_image_dense

    backbone = create_backbone(spec)
    transform = build_torchvision_transform(backbone.image_transform)
    out: dict[str, dict[str, object]] = {}
    for split, records in splits.items():
        images = RecordImages(records, transform)
        parts: dict[str, list] = {"emb": [], "pool": [], "pool2": []}
        for start in range(0, len(records), 128):
            batch = torch.stack([images[i] for i in range(start, min(start + 128, len(records)))])
            with torch.inference_mode():
                parts["emb"].append(backbone.encode_image(batch).float())
                parts["pool"].append(encode_image_dense(backbone, batch, layers=(-1,)).mean((2, 3)))
                parts["pool2"].append(encode_image_dense(backbone, batch, layers=(-2,)).mean((2, 3)))
        out[split] = {k: torch.cat(v).double().numpy() for k, v in parts.items()}
    return out


def weighted_logistic(x, y, c: float, max_iter: int = 200):
    import numpy as np
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float64))
    n, dim = xt.shape
    ratio = yt.mean(0)
    weight = torch.where(yt > 0.5, torch.exp(1 - ratio), torch.exp(ratio))
    w = torch.zeros(dim, y.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-6,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        data = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt, weight=weight, reduction="sum")
        loss = (data + w.pow(2).sum() / (2 * c)) / n
        loss.backward()
        return loss

    opt.step(closure)
    w_, b_ = w.detach().numpy(), b.detach().numpy()
    return lambda t: 1 / (1 + np.exp(-np.clip(t @ w_ + b_, -500, 500)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--probe-seeds", default=None,
                        help="comma-separated seed of each model's SGD probes (as the suite: the model's seed); "
                             "default 0 for every model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    seeds = [int(v) for v in args.probe_seeds.split(",")] if args.probe_seeds else [0] * len(args.models)
    if len(seeds) != len(args.models):
        parser.error(f"--probe-seeds has {len(seeds)} values for {len(args.models)} models")

    from types import SimpleNamespace

    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from plipbench.data.readers import read_dataset
    from plipbench.data.synthetic_cache import ensure_synthetic
    from plipbench.evaluation.protocols import attributes as A
    from plipbench.evaluation.protocols.options import AttributeLinearProbeOptions

    torch.set_num_threads(args.threads)
    dataset = read_dataset("pa100k", ensure_synthetic("synth-pa100k", layout="pa100k", progress=False))
    splits = {s: dataset.split(s) for s in ("train", "val", "test")}
    labels = {s: np.asarray([[1 if v == 1 else 0 for v in r.attributes] for r in recs], np.uint8)
              for s, recs in splits.items()}
    names = list(dataset.attribute_names)
    metric = dict(A.ATTRIBUTE_METRIC_DEFAULTS)
    score = lambda p, y: 100 * float(A._evaluate(p, y, names, metric)["mA"])  # noqa: E731
    defaults = AttributeLinearProbeOptions.defaults()
    sgd_variants = {"wbce": defaults, "wbce-e50": {**defaults, "epochs": 50, "lr": 3e-3},
                    "wbce-last": {**defaults, "epochs": 30, "lr": 3e-3}}
    table = Table(title="synth-pa100k test mA (%), frozen features")
    table.add_column("model")
    columns = [f"{f}/{v}" for f in ("emb", "pool", "pool2") for v in (*sgd_variants, "wlr")]
    for col in columns:
        table.add_column(col, justify="right")
    for spec, seed in zip(args.models, seeds, strict=True):
        feats = features(spec, splits)
        ctx = SimpleNamespace(seed=seed, device="cpu")
        row = []
        for kind in ("emb", "pool", "pool2"):
            x = {s: feats[s][kind] for s in splits}
            for variant, options in sgd_variants.items():
                val = None if variant == "wbce-last" else (x["val"], labels["val"])
                probs, _, _ = A._weighted_bce_probe(ctx, options, metric, x["train"], labels["train"], val,
                                                    x["test"], names)
                row.append(score(probs, labels["test"]))
            scaler = A._Standardizer(x["train"])
            val_ma = {}
            for c in (1e-3, 1e-2, 0.1, 1.0):
                predict = weighted_logistic(scaler(x["train"]), labels["train"], c)
                val_ma[c] = score(predict(scaler(x["val"])), labels["val"])
            best = max(val_ma, key=val_ma.get)
            fit_x = np.concatenate([x["train"], x["val"]])
            fit_y = np.concatenate([labels["train"], labels["val"]])
            scaler = A._Standardizer(fit_x)
            row.append(score(weighted_logistic(scaler(fit_x), fit_y, best)(scaler(x["test"])), labels["test"]))
        table.add_row(spec, *(f"{v:.1f}" for v in row))
        print(spec, " ".join(f"{c}={v:.2f}" for c, v in zip(columns, row, strict=True)), flush=True)
    Console().print(table)


if __name__ == "__main__":
    main()
