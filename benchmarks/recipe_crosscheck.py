"""Cross-check plipbench's ``bot`` recipe against torchreid's own training engine on the synthetic Market twin.

Issue 13: "bot with a small backbone on the synthetic Market twin, against torchreid's own training engine
configured as closely as it allows, same data and budget. The final mAPs must agree within their seed
intervals." For each seed ``s`` in ``0..S-1``:

- **initial weights**: torchreid's ResNet-18 (``torchreid.models.resnet.ResNet``, BasicBlock [2, 2, 2, 2],
  last stride 1, torchreid's own random init under ``torch.manual_seed(s)``) is built once; its backbone state
  dict is saved and loaded into both engines, so both start from the SAME weights (no ImageNet weights: this
  machine is offline, and random init keeps the check about the training engines).
- **plipbench**: ``plipbench eval --task <a temporary task on the generated root> --model <a temporary
  baseline: timm resnet18 with weights=that file> --protocol fine-tune --option recipe=bot`` with the short,
  named overrides below, ``--seed s``.
- **torchreid**: ``torchreid.data.ImageDataManager`` over the same root (a registered Market-1501 reader),
  ``RandomIdentitySampler`` 16 x 4, ``ImageTripletEngine`` (CE with label smoothing + batch-hard triplet,
  margin 0.3, weights 1:1), ``torchreid.optim.build_optimizer`` (Adam, lr 3.5e-4, wd 5e-4, betas 0.9/0.999),
  ``torchreid.optim.build_lr_scheduler('multi_step')`` chained with torch's ``LinearLR`` warm-up (torchreid has
  none), its own evaluation (Market-1501 CMC/mAP, cosine distance on L2-normalised features).

The budget (both engines identical): train and test at 64x32 (the generator writes 128x64), pad 3 (BoT's 10 at
256 rows, scaled to 64), ``epochs_scale = epochs / 120`` (default 24 epochs: warm-up 2, x0.1 at 8 and 14;
see :func:`scaled_schedule`),
batch 64 = 16 identities x 4 images, the ``synth-market`` preset with 96 identities x 8 images (36 train
identities, 288 train images, about 4 steps per epoch; 183 queries, 312 gallery images). The default run
(3 seeds x 2 engines) takes about 10-15 minutes on a 2-core CPU.

What torchreid cannot be configured to do, and so differs (reported in the JSON under ``differences``):

- random crop: torchreid's ``random_crop`` is ``Random2DTranslation`` (with p 0.5, enlarge by 1.125 and crop)
  instead of BoT's always-on pad + random crop;
- random erasing: torchreid's ``RandomErasing`` (BoT's own code) writes the ImageNet mean into the normalised
  tensor and draws the aspect ratio uniformly; the recipe ships fill 0 and torchvision's log-uniform aspect;
- BNNeck: torchreid's ResNet-18 has none (its head is GAP -> Linear with bias). With ``--torchreid-head
  bnneck`` (the default) the script wraps torchreid's backbone in BoT's head (BN1d with frozen bias,
  bias-free classifier N(0, 0.001), triplet on the pre-BN feature, test after BN); ``--torchreid-head
  torchreid`` keeps torchreid's own head (test on the GAP feature);
- warm-up: torchreid's schedulers have none; torch's ``LinearLR`` reproduces BoT's per-epoch factors exactly;
- torchreid's loader drops the last incomplete batch and its sampler draws identities with Python's ``random``
  (plipbench: its own seeded P x K sampler); each engine's random streams differ, which the seed interval covers.

Example::

    python benchmarks/recipe_crosscheck.py --json results-crosscheck.json
    python benchmarks/recipe_crosscheck.py --seeds 1 --epochs 1 --identities 40 --json /tmp/x.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REFERENCE_EPOCHS = 120  # BoT softmax_triplet.yml MAX_EPOCHS
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
DATASET_NAME = "plipbench_synth_market1501"

DIFFERENCES = [
    "random crop: torchreid Random2DTranslation (p 0.5, enlarge x1.125, crop) vs plipbench pad + random crop (always)",
    "random erasing: torchreid fills the ImageNet mean into the normalised tensor, uniform aspect, 100 tries; "
    "plipbench (recipe) fills 0, torchvision log-uniform aspect, 10 tries",
    "BNNeck: torchreid's resnet18 has none; --torchreid-head bnneck adds BoT's head around torchreid's backbone",
    "warm-up: torchreid has none; torch LinearLR chained with torchreid's multi_step gives BoT's per-epoch factors",
    "sampler / loader: torchreid's RandomIdentitySampler (Python random) with drop_last; plipbench's seeded P x K",
    "initial weights: identical backbone (torchreid ResNet-18 random init, seed s); heads drawn by each engine",
]


# -- data ---------------------------------------------------------------------------------------------------
def generate_data(out: Path, identities: int, images_per_id: int, env: dict[str, str]) -> Path:
    """The synthetic Market-1501 twin via ``plipbench data synth`` (seed 0, preset synth-market)."""
    cmd = [sys.executable, "-m", "plipbench.cli", "data", "synth", "--out", str(out), "--preset", "synth-market",
           "--layout", "market1501", "--identities", str(identities), "--images-per-id", str(images_per_id),
           "--seed", "0", "--overwrite"]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return out


def write_task(folder: Path, data_root: Path) -> str:
    """A temporary tasks folder with one image ReID task on ``data_root`` (Market-1501 layout)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    task = {
        "name": "crosscheck-market1501", "kind": "image-reid", "family": "image-reid",
        "description": f"recipe cross-check on the synthetic Market-1501 twin at {data_root}",
        "dataset": {"layout": "market1501", "root": str(data_root), "name": "synth-market"},
        "splits": {"train": "train", "val": None, "query": "query", "gallery": "gallery"},
        "protocols": ["fine-tune"], "metric_options": {"metric": "cosine", "ap": "noninterp", "max_rank": 50},
        "main_score": "mAP", "paper_task": "market1501", "synthetic": True,
    }  # fmt: skip
    (folder / "crosscheck-market1501.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    (folder / "suites").mkdir(exist_ok=True)
    return task["name"]


def write_baseline(path: Path, weights: Path) -> Path:
    """A temporary baseline YAML: timm's resnet18 with the shared initial weights."""
    import yaml

    spec = {
        "name": path.stem, "description": "timm resnet18 with torchreid's random init (cross-check)",
        "family": "timm", "model": "resnet18", "args": {},
        "weights": {"path": str(weights), "url": "local (written by benchmarks/recipe_crosscheck.py)"},
        "modalities": ["image"], "embedding_dim": 512, "license": "n/a", "feature": "GAP of layer4",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# -- shared initial weights ---------------------------------------------------------------------------------
def torchreid_resnet18(num_classes: int, seed: int) -> Any:
    """torchreid's ResNet-18 with last stride 1 (BoT), torchreid's own init, seeded."""
    import torch
    from torchreid.reid.models.resnet import BasicBlock, ResNet

    torch.manual_seed(seed)
    return ResNet(num_classes=num_classes, loss="triplet", block=BasicBlock, layers=[2, 2, 2, 2], last_stride=1,
                  fc_dims=None, dropout_p=None)  # fmt: skip


def save_backbone(model: Any, path: Path) -> Path:
    import torch

    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("classifier.", "fc."))}
    torch.save(state, path)
    return path


# -- plipbench ----------------------------------------------------------------------------------------------
def plipbench_options(args: argparse.Namespace) -> list[str]:
    """The ``--option`` values of the plipbench run: the bot recipe with the short budget, named."""
    schedule = scaled_schedule(args.epochs)
    steps = (f"schedule.milestones={schedule['milestones']}" if schedule["milestones"]
             else "schedule={kind: constant}")
    return ["recipe=bot", f"epochs={args.epochs}", f"warmup_epochs={schedule['warmup_epochs']}", steps,
            f"input.size={[args.height, args.width]}",
            f"augment.pad={args.pad}", "num_workers=0"]  # fmt: skip


def run_plipbench(args: argparse.Namespace, seed: int, baseline: Path, tasks: Path, task: str, out: Path,
                  env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "plipbench.cli", "eval", "--task", task, "--model", str(baseline),
           "--protocol", "fine-tune", "--seed", str(seed), "--out", str(out), "--no-progress", "--overwrite"]
    for option in plipbench_options(args):
        cmd += ["--option", option]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**env, "PLIPBENCH_TASKS": str(tasks)}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"plipbench eval failed (seed {seed}, exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    results = [json.loads(p.read_text()) for p in sorted(out.rglob("*.json"))]
    results = [r for r in results if isinstance(r, dict) and "scores" in r]
    if len(results) != 1:
        raise SystemExit(f"plipbench eval wrote {len(results)} result files under {out}, expected 1")
    scores, details = results[0]["scores"], results[0].get("details", {})
    return {"mAP": float(scores["mAP"]), "R@1": float(scores["R@1"]), "seconds": time.perf_counter() - start,
            "steps": details.get("steps"), "epoch_lr": [lrs[0] for lrs in details.get("epoch_lr", [])],
            "last_stride": details.get("last_stride"), "train_identities": details.get("num_train_identities")}


# -- torchreid ----------------------------------------------------------------------------------------------
def register_dataset() -> None:
    """Register the twin with torchreid: Market-1501's reader (regex, junk -1 dropped) on a bare root."""
    import contextlib
    import os.path as osp

    import torchreid
    from torchreid.reid.data.datasets.image.market1501 import ImageDataset, Market1501

    class SynthMarket1501(Market1501):
        def __init__(self, root: str = "", market1501_500k: bool = False, **kwargs: Any) -> None:
            self.data_dir = osp.abspath(osp.expanduser(root))
            self.train_dir = osp.join(self.data_dir, "bounding_box_train")
            self.query_dir = osp.join(self.data_dir, "query")
            self.gallery_dir = osp.join(self.data_dir, "bounding_box_test")
            self.check_before_run([self.data_dir, self.train_dir, self.query_dir, self.gallery_dir])
            train = self.process_dir(self.train_dir, relabel=True)
            query = self.process_dir(self.query_dir, relabel=False)
            gallery = self.process_dir(self.gallery_dir, relabel=False)
            ImageDataset.__init__(self, train, query, gallery, **kwargs)

    with contextlib.suppress(ValueError):  # already registered by an earlier seed in this process
        torchreid.reid.data.register_image_dataset(DATASET_NAME, SynthMarket1501)


def bnneck_model(backbone: Any, num_classes: int, seed: int) -> Any:
    """BoT's head around torchreid's backbone: GAP -> BN1d (bias frozen) -> Linear without bias, N(0, 0.001);
    training returns ``(logits, pre-BN feature)`` (ImageTripletEngine's ``outputs, features``), eval the
    post-BN feature."""
    import torch
    from torch import nn

    class BNNeckReID(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            torch.manual_seed(seed + 7919)
            self.bottleneck = nn.BatchNorm1d(backbone.feature_dim)
            self.bottleneck.bias.requires_grad_(False)
            self.classifier_bnneck = nn.Linear(backbone.feature_dim, num_classes, bias=False)
            nn.init.normal_(self.classifier_bnneck.weight, std=0.001)

        def forward(self, x: torch.Tensor) -> Any:
            f = self.backbone.global_avgpool(self.backbone.featuremaps(x)).flatten(1)
            after = self.bottleneck(f)
            if not self.training:
                return after
            return self.classifier_bnneck(after), f

    model = BNNeckReID()
    model.backbone.classifier = nn.Identity()  # unused: keep it out of the optimizer
    return model


def warmup_multistep(optimizer: Any, warmup_epochs: int, milestones: list[int], gamma: float) -> Any:
    """BoT's WarmupMultiStepLR stepped at each epoch's start (epoch e, 0-based, runs at step e + 1):
    torch ``LinearLR`` from ``0.01 + 0.99 / W`` over ``W - 1`` steps, chained with torchreid's multi_step
    at ``milestone - 1``."""
    import torch
    import torchreid

    multistep = torchreid.reid.optim.build_lr_scheduler(optimizer, lr_scheduler="multi_step",
                                                        stepsize=[m - 1 for m in milestones], gamma=gamma)
    if warmup_epochs <= 1:
        return multistep
    warm = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01 + 0.99 / warmup_epochs,
                                             end_factor=1.0, total_iters=warmup_epochs - 1)
    return torch.optim.lr_scheduler.ChainedScheduler([warm, multistep])


def run_torchreid(args: argparse.Namespace, seed: int, data_root: Path, weights: Path, save_dir: Path,
                  schedule: dict[str, Any]) -> dict[str, Any]:
    import contextlib
    import io

    import torch
    import torchreid
    from torchreid.reid.engine import ImageTripletEngine

    register_dataset()
    start = time.perf_counter()
    torchreid.reid.utils.set_random_seed(seed)
    quiet = contextlib.redirect_stdout(io.StringIO()) if not args.verbose else contextlib.nullcontext()
    with quiet:
        data = torchreid.reid.data.ImageDataManager(
            root=str(data_root), sources=DATASET_NAME, height=args.height, width=args.width,
            transforms=["random_flip", "random_crop", "random_erase"], norm_mean=IMAGENET_MEAN,
            norm_std=IMAGENET_STD, use_gpu=False, batch_size_train=64, batch_size_test=128, workers=0,
            num_instances=4, train_sampler="RandomIdentitySampler",
        )  # fmt: skip
        backbone = torchreid_resnet18(data.num_train_pids, seed)
        backbone.load_state_dict({**backbone.state_dict(), **torch.load(weights, weights_only=True)})
        model = bnneck_model(backbone, data.num_train_pids, seed) if args.torchreid_head == "bnneck" else backbone
        optimizer = torchreid.reid.optim.build_optimizer(model, optim="adam", lr=3.5e-4, weight_decay=5e-4,
                                                         adam_beta1=0.9, adam_beta2=0.999)
        scheduler = warmup_multistep(optimizer, schedule["warmup_epochs"], schedule["milestones"], 0.1)

        class RecordingEngine(ImageTripletEngine):
            final: tuple[float, float] | None = None
            epoch_lr: list[float] = []
            steps = 0

            def train(self, *a: Any, **kw: Any) -> None:
                self.epoch_lr = [*self.epoch_lr, float(self.get_current_lr())]
                self.steps += len(self.train_loader)
                super().train(*a, **kw)

            def _evaluate(self, *a: Any, **kw: Any) -> tuple[float, float]:
                rank1, mAP = super()._evaluate(*a, **kw)
                self.final = (float(rank1), float(mAP))
                return rank1, mAP

        engine = RecordingEngine(data, model, optimizer, margin=0.3, weight_t=1.0, weight_x=1.0,
                                 scheduler=scheduler, use_gpu=False, label_smooth=True)
        engine.run(save_dir=str(save_dir), max_epoch=args.epochs, eval_freq=-1, print_freq=10_000,
                   dist_metric="cosine", normalize_feature=True)  # fmt: skip
    assert engine.final is not None
    rank1, mAP = engine.final
    return {"mAP": mAP, "R@1": rank1, "seconds": time.perf_counter() - start, "steps": engine.steps,
            "epoch_lr": [float(f"{lr:.6g}") for lr in engine.epoch_lr], "train_identities": data.num_train_pids}


# -- statistics ---------------------------------------------------------------------------------------------
def t_interval(values: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean and two-sided Student-t interval over seeds (None bounds with one seed)."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "sd": None, "low": None, "high": None, "n": n}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "n": n}


def welch_difference(a: list[float], b: list[float], level: float = 0.95) -> dict[str, Any]:
    """``mean(a) - mean(b)`` with a Welch (unequal variances) t-interval; None bounds below 2 seeds each."""
    from scipy import stats

    ia, ib = t_interval(a), t_interval(b)
    diff = ia["mean"] - ib["mean"]
    if ia["sd"] is None or ib["sd"] is None:
        return {"difference": diff, "low": None, "high": None, "df": None, "contains_zero": None}
    va, vb = ia["sd"] ** 2 / ia["n"], ib["sd"] ** 2 / ib["n"]
    se = math.sqrt(va + vb)
    if se == 0:
        return {"difference": diff, "low": diff, "high": diff, "df": None, "contains_zero": diff == 0}
    df = (va + vb) ** 2 / (va**2 / (ia["n"] - 1) + vb**2 / (ib["n"] - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return {"difference": diff, "low": diff - half, "high": diff + half, "df": df,
            "contains_zero": bool(diff - half <= 0 <= diff + half)}


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in ("mAP", "R@1"):
        a = [r[metric] for r in runs["plipbench"]]
        b = [r[metric] for r in runs["torchreid"]]
        ia, ib = t_interval(a), t_interval(b)
        overlap = None if ia["low"] is None or ib["low"] is None else bool(ia["low"] <= ib["high"] and ib["low"] <= ia["high"])
        out[metric] = {"plipbench": ia, "torchreid": ib, "intervals_overlap": overlap,
                       "welch_difference": welch_difference(a, b)}
    return out


def render(runs: dict[str, list[dict[str, Any]]], summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    table = Table(title="bot recipe cross-check: plipbench vs torchreid (synthetic Market twin, %)")
    table.add_column("engine")
    seeds = len(runs["plipbench"])
    for s in range(seeds):
        table.add_column(f"seed {s} mAP / R1", justify="right")
    table.add_column("mAP mean [95% t]", justify="right")
    table.add_column("R1 mean [95% t]", justify="right")
    table.add_column("s/run", justify="right")
    for engine in ("plipbench", "torchreid"):
        cells = [f"{pct(r['mAP'])} / {pct(r['R@1'])}" for r in runs[engine]]
        ci = [summary[m][engine] for m in ("mAP", "R@1")]
        cells += [f"{pct(c['mean'])} [{pct(c['low'])}, {pct(c['high'])}]" for c in ci]
        cells.append(f"{sum(r['seconds'] for r in runs[engine]) / seeds:.0f}")
        table.add_row(engine, *cells)
    console = Console()
    console.print(table)
    for metric in ("mAP", "R@1"):
        w, s = summary[metric]["welch_difference"], summary[metric]
        console.print(f"{metric}: plipbench - torchreid = {pct(w['difference'])} pts, Welch 95% "
                      f"[{pct(w['low'])}, {pct(w['high'])}], contains 0: {w['contains_zero']}; "
                      f"intervals overlap: {s['intervals_overlap']}")


# -- main ---------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, help="an existing Market-1501-layout root (default: generate one)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..S-1 (default 3)")
    p.add_argument("--epochs", type=int, default=24, help="epochs; warm-up and milestones scale by epochs/120")
    p.add_argument("--identities", type=int, default=96, help="generator identities (default 96: 36 train)")
    p.add_argument("--images-per-id", type=int, default=8)
    p.add_argument("--height", type=int, default=64, help="train and test height (default 64)")
    p.add_argument("--width", type=int, default=32, help="train and test width (default 32)")
    p.add_argument("--pad", type=int, default=3, help="pad before the random crop (default 3: BoT's 10 at 256)")
    p.add_argument("--torchreid-head", choices=("bnneck", "torchreid"), default="bnneck")
    p.add_argument("--threads", type=int, default=1, help="torch threads for each engine (default 1)")
    p.add_argument("--json", type=Path, help="write the runs and the summary here")
    p.add_argument("--verbose", action="store_true", help="show torchreid's own log")
    args = p.parse_args(argv)
    for name in ("seeds", "epochs", "identities", "images_per_id", "height", "width", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.pad < 0:
        p.error("--pad must be at least 0")
    if args.data is not None and not all((args.data / d).is_dir() for d in ("bounding_box_train", "query",
                                                                            "bounding_box_test")):
        p.error(f"--data {args.data}: not a Market-1501 layout (bounding_box_train, query, bounding_box_test)")
    return args


def scaled_schedule(epochs: int) -> dict[str, Any]:
    """BoT's warm-up (10 epochs) and milestones (40, 70) scaled by ``epochs / 120`` and rounded, as plipbench's
    ``epochs_scale`` does (a warm-up of one epoch or less is none: BoT's epoch 1 runs at step 1); a milestone is at least 2 (never the first epoch) and equal milestones merge, so a
    1-epoch smoke run keeps the base lr (a constant schedule: no milestone within the run)."""
    scale = epochs / REFERENCE_EPOCHS
    return {"epochs": epochs, "warmup_epochs": w if (w := round(10 * scale)) > 1 else 0,
            "milestones": sorted({m for m in (max(2, round(m * scale)) for m in (40, 70)) if m <= epochs})}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO) + os.pathsep
           + os.environ.get("PYTHONPATH", "")}  # fmt: skip
    schedule = scaled_schedule(args.epochs)
    runs: dict[str, list[dict[str, Any]]] = {"plipbench": [], "torchreid": []}
    with tempfile.TemporaryDirectory(prefix="plipbench-crosscheck-") as tmp_name:
        tmp = Path(tmp_name)
        data_root = args.data or generate_data(tmp / "data", args.identities, args.images_per_id, env)
        task = write_task(tmp / "tasks", data_root)
        for seed in range(args.seeds):
            init = torchreid_resnet18(num_classes=1, seed=seed)
            weights = save_backbone(init, tmp / f"init-seed{seed}.pth")
            baseline = write_baseline(tmp / f"crosscheck-resnet18-seed{seed}.yaml", weights)
            runs["plipbench"].append({"seed": seed, **run_plipbench(args, seed, baseline, tmp / "tasks", task,
                                                                    tmp / f"plip-seed{seed}", env)})
            runs["torchreid"].append({"seed": seed, **run_torchreid(args, seed, data_root, weights,
                                                                    tmp / f"torchreid-seed{seed}", schedule)})
            print(f"seed {seed}: plipbench mAP {runs['plipbench'][-1]['mAP']:.4f}, "
                  f"torchreid mAP {runs['torchreid'][-1]['mAP']:.4f}", flush=True)
    summary = summarise(runs)
    render(runs, summary)
    if args.json:
        import torchreid

        payload = {
            "command": " ".join(["python", "benchmarks/recipe_crosscheck.py", *(argv or sys.argv[1:])]),
            "config": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "schedule": schedule, "plipbench_options": plipbench_options(args),
                       "torchreid_version": torchreid.__version__, "torch_version": torch.__version__},
            "differences": DIFFERENCES, "runs": runs, "summary": summary,
        }  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
