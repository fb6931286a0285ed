"""Recipe throughput: every shipped fine-tune recipe for a fixed number of steps on a synthetic twin, with the
images/s, peak memory and feature-extraction speed that project the full recipe's wall time on real data.

    python benchmarks/recipes.py [--device cpu|cuda] [--recipes bot,transreid,...] [--steps 20]
                                 [--warmup-steps 3] [--batch-size N] [--identities N] [--workers N]
                                 [--threads N] [--backbone RECIPE=SPEC] [--json OUT] [--in-process]

Protocol choices (each is in the JSON):

- **What runs:** the task kind's ``fine-tune`` protocol with ``--option recipe=NAME`` on the recipe's synthetic
  twin (``synth-market1501`` for the image ReID recipes, ``synth-cuhk-pedes`` for the text ones), i.e. the
  recipe's own train pipeline (resize to the recipe's input size, flip, pad + crop, erasing), sampler,
  optimizer, schedule and losses, through the protocol code a real run uses (``recipe_fine_tune``), capped
  with ``max_steps = warm-up + steps``. The twin's identity count is ``--identities`` (default: the preset's).
- **Backbones:** one per recipe, at the real architecture, with random weights (nothing is downloaded): BoT
  ResNet-50 (timm), TransReID ViT-B/16 (timm, built at 256x128), PLIP RN50 + BERT-base (``random:plip-rn50``),
  IRRA CLIP ViT-B/16 + text transformer (open_clip ``pretrained=False``). ``--backbone RECIPE=SPEC`` swaps one.
  A ViT whose native size is not the recipe's is resampled by the fine-tune itself (TransReID's and IRRA's
  ``resize_pos_embed``, ``details.position_embedding``), so every recipe trains at its real resolution.
- **Timing:** a global optimizer step hook stamps the end of every step (after ``torch.cuda.synchronize()`` on
  CUDA). The first ``--warmup-steps`` steps (cuDNN autotuning, allocator growth, first decode) are excluded;
  train samples/s = samples in the timed steps / their wall time, data loading included (a sample is one
  image, or one image-caption pair for ``captions: each``). Per-epoch validation is switched off (the val
  records are dropped) and no checkpoint is written, so the timed steps are training steps only.
- **Memory:** CUDA: ``torch.cuda.max_memory_allocated`` (and reserved) over the timed steps, the peak statistics
  reset at the end of the warm-up (model, optimizer state and activations). CPU: the process's peak resident
  set (``VmHWM``, reset at the end of the warm-up through ``/proc/self/clear_refs``) minus the resident set
  before the fine-tune started (the frozen backbone and the data already loaded; loader workers' memory is not
  counted). Each recipe runs in a fresh
  process (unless ``--in-process``), so that no recipe reuses memory an earlier one freed.
- **Eval:** images/s of the test feature extraction after training (``FeatureStore.encode_images_with``: the
  decoded-image cache, warmed before timing, then normalisation and forward; the text encoding of captions is
  not in it).
- **Projection:** train wall time = the recipe's epochs x the real training set (Market-1501 12,936 images;
  CUHK-PEDES 68,126 image-caption pairs for ``captions: each``, else 34,054 images; the readers' official
  split sizes) / the measured samples/s; eval = the real test images (query + gallery; the test images of a
  text task, plus the val images once per epoch where the protocol selects on val) / eval images/s. It assumes
  the same precision, batch and loader as measured: ``--batch-size`` (for CPU feasibility) makes it a lower
  bound of throughput at the real batch, and is printed as an override.
- ``rethinking`` (ResNet-50) and ``solider-par`` (ViT-B/16 at PA-100K's 256x128) run on ``synth-pa100k``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHIPPED = ("bot", "transreid", "plip-cmpmc", "irra", "rethinking", "solider-par")


@dataclass(frozen=True)
class RecipeBench:
    """One recipe's benchmark setup: its synthetic twin and a random-weight backbone of the real architecture."""

    recipe: str
    task: str
    backbone: str
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


BENCHES: dict[str, RecipeBench] = {
    "bot": RecipeBench("bot", "synth-market1501", "random:timm/resnet50", {}, "ResNet-50 (timm), random init"),
    "transreid": RecipeBench("transreid", "synth-market1501", "random:timm/vit_base_patch16_224",
                             {"img_size": (256, 128)}, "ViT-B/16 (timm) built at 256x128, random init"),
    "plip-cmpmc": RecipeBench("plip-cmpmc", "synth-cuhk-pedes", "random:plip-rn50", {},
                              "PLIP ModifiedResNet-50 + BERT-base, random init"),
    "irra": RecipeBench("irra", "synth-cuhk-pedes", "open_clip:ViT-B-16", {"pretrained": False},
                        "CLIP ViT-B/16 + text transformer (open_clip), random init"),
    "rethinking": RecipeBench("rethinking", "synth-pa100k", "random:timm/resnet50", {},
                              "ResNet-50 (timm), random init"),
    "solider-par": RecipeBench("solider-par", "synth-pa100k", "random:timm/vit_base_patch16_224",
                               {"img_size": (256, 128)}, "ViT-B/16 (timm) built at 256x128 (PA-100K's size), random init"),
}


# -- memory and hardware ------------------------------------------------------------------------------
def _status_kib(key: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``); None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident set (``VmHWM``) to the current one; False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_kib() -> int:
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_model() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """CPU model, torch version, threads and the GPU, as recorded with every figure."""
    import torch

    from plipbench.environment import hardware_info

    info = dict(hardware_info())
    info.update(cpu_model=_cpu_model(), torch=torch.__version__)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# -- the step clock -----------------------------------------------------------------------------------
class StepClock:
    """Stamps the end of every optimizer step (a global post-step hook), resets the memory peaks when the
    warm-up ends and reads them when the timed steps end."""

    def __init__(self, device: str, warmup: int, steps: int) -> None:
        self.device, self.warmup, self.steps = device, warmup, steps
        self.stamps: list[float] = []
        self.rss_reset = False
        self.peak: dict[str, float] = {}
        self._handle: Any = None

    def __enter__(self) -> StepClock:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handle = register_optimizer_step_post_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _cuda(self) -> bool:
        return str(self.device).startswith("cuda")

    def _hook(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        import torch

        if self._cuda():
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        if len(self.stamps) == self.warmup:
            if self._cuda():
                torch.cuda.reset_peak_memory_stats()
            else:
                self.rss_reset = _reset_peak_rss()
        elif len(self.stamps) == self.warmup + self.steps:
            if self._cuda():
                self.peak = {"allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                             "reserved_mib": torch.cuda.max_memory_reserved() / 2**20}
            else:
                self.peak = {"rss_kib": float(_peak_rss_kib())}

    def timed_seconds(self) -> float:
        """Wall time of the timed steps (from the end of the last warm-up step to the end of the last one)."""
        return self.stamps[self.warmup + self.steps - 1] - self.stamps[self.warmup - 1]


# -- one recipe ---------------------------------------------------------------------------------------
def build_backbone(bench: RecipeBench, spec: str | None, device: str, input_size: tuple[int, int]) -> Any:
    """The recipe's backbone with random weights, made to train at ``input_size`` (see the module docstring)."""
    import torch

    from plipbench.models import create_backbone
    from plipbench.recipes.backbones import build_without_weights

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if spec is None:
            backbone = create_backbone(bench.backbone, device=device, **bench.backbone_kwargs)
        else:  # a --backbone override: without weights where its family allows (pretrained=False)
            backbone = build_without_weights(spec)
            backbone.to(device)
    patch_embed = getattr(backbone.module, "patch_embed", None)
    built = tuple(getattr(patch_embed, "img_size", None) or ())
    if built and built == tuple(input_size):  # a timm ViT built at the recipe's size: its transform says so
        backbone.image_transform = backbone.image_transform.model_copy(
            update={"size": tuple(input_size), "resize": "stretch", "crop_pct": 1.0})
        backbone._fingerprint = None
    return backbone  # any other ViT is resampled to the recipe's size by the fine-tune itself


def _warm_decoded_cache(backbone: Any, data: Any, recipe: Any) -> None:
    """Decode the test images at the recipe's test resize once before timing, as the fine-tunes' own test
    transform does (stretch to the input size, the test interpolation), so that eval images/s is that of a
    warm decoded-image cache for every recipe, not only for the second one on a twin."""
    from plipbench.data.decoded import decoded_images, transform_resize

    spec = backbone.image_transform.model_copy(update={
        "size": tuple(recipe.input.size), "interpolation": recipe.input.test_interpolation, "resize": "stretch",
        "crop_pct": 1.0})
    records = data.query_records + data.gallery_records + data.test_records
    decoded_images(records, transform_resize(spec))


def _batch_sizes(details: dict[str, Any], first: int, count: int) -> list[int]:
    """The sizes of global steps ``first .. first+count-1`` of the recipe's sampler (a P x K sampler gives full
    batches; a random one a short last batch per epoch unless ``drop_last``)."""
    recipe = details["recipe"]["recipe"]
    sampler = recipe["sampler"]
    if sampler["kind"] == "identity":
        return [int(details["effective_identities_per_batch"]) * int(sampler["instances"])] * count
    n, size = int(details.get("num_train_samples", details["num_train_images"])), int(sampler["batch_size"])
    full, rest = divmod(n, size)
    epoch = [size] * full + ([rest] if rest and not sampler["drop_last"] else [])
    return [epoch[(first + i) % len(epoch)] for i in range(count)]


def _real_sizes(task: Any, registry: Any, captions: bool) -> dict[str, Any]:
    """The real dataset's official sizes (reader metadata) for the projection."""
    from plipbench.data.readers import get_reader

    real = registry.get(task.paper_task)
    sizes = get_reader(real.dataset.layout).split_sizes
    train = sizes["train"]
    samples = int(train["captions"] if captions and "captions" in train else train["images"])
    if task.kind == "image-reid":
        test_images = int(sizes["query"]["images"] + sizes["gallery"]["images"])
    else:
        test_images = int(sizes["test"]["images"])
    val_images = int(sizes["val"]["images"]) if real.splits.val and "val" in sizes else 0
    return {"dataset": real.dataset.name or real.name, "train_samples_per_epoch": samples,
            "sample": "image-caption pair" if captions and "captions" in train else "image",
            "test_images": test_images, "val_images_per_epoch": val_images}


def bench_recipe(name: str, *, device: str, steps: int, warmup: int, batch_size: int | None,
                 identities: int | None, workers: int, eval_batch: int, backbone_spec: str | None = None
                 ) -> dict[str, Any]:
    """Train recipe ``name`` for ``warmup + steps`` steps on its twin and measure it (module docstring)."""
    import torch

    from plipbench.distributed import init_distributed
    from plipbench.errors import ConfigError
    from plipbench.evaluation.features import FeatureStore
    from plipbench.evaluation.protocols import protocol_entry
    from plipbench.evaluation.protocols.base import ProtocolContext
    from plipbench.evaluation.runner import DatasetCache, build_task_data
    from plipbench.evaluation.tasks import TaskRegistry
    from plipbench.recipes import load_recipe

    if name not in BENCHES:
        raise ConfigError(f"recipe {name!r} has no benchmark setup; known: {', '.join(BENCHES)}")
    bench = BENCHES[name]
    recipe = load_recipe(name)
    registry = TaskRegistry()
    task = registry.get(bench.task)
    if identities is not None:
        synthetic = task.dataset.synthetic.model_copy(update={"identities": identities})
        task = task.model_copy(update={"dataset": task.dataset.model_copy(update={"synthetic": synthetic})})
    protocol = task.protocol("fine-tune")
    options: dict[str, Any] = {"recipe": name, "max_steps": warmup + steps, "num_workers": workers}
    if batch_size is not None:
        options["batch_size"] = batch_size
    entry = protocol_entry(task.kind, protocol.base)
    entry.validate(options, f"benchmark {name} ({task.kind} {protocol.base})")
    input_size = tuple(recipe.input.size)
    backbone = build_backbone(bench, backbone_spec, device, input_size)
    data = build_task_data(task, protocol, DatasetCache(False), init_distributed(), 0)
    data.val_records = []  # no per-epoch validation inside the timed steps
    _warm_decoded_cache(backbone, data, recipe)
    store = FeatureStore(backbone, cache_dir=None, batch_size=eval_batch, num_workers=0)
    ctx = ProtocolContext(backbone=backbone, task=task, protocol=protocol, data=data, features=store,
                          options=options, seed=0, device=device, progress=False, checkpoint=None)
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
    rss_before = _status_kib("VmRSS") or 0
    started = time.perf_counter()
    with StepClock(device, warmup, steps) as clock:
        output = entry.load()(ctx)
    total = time.perf_counter() - started
    if len(clock.stamps) < warmup + steps:
        raise ConfigError(f"benchmark {name}: the fine-tune ran {len(clock.stamps)} step(s), "
                          f"not {warmup + steps}")
    details = output.details
    resolved = details["recipe"]["recipe"]
    sizes = _batch_sizes(details, warmup, steps)
    seconds = clock.timed_seconds()
    train_ips = sum(sizes) / seconds
    eval_ips = store.stats["images_encoded"] / store.stats["encode_seconds"]
    real = _real_sizes(task, registry, resolved["augment"].get("captions") == "each")
    epochs = int(resolved["epochs"])
    train_s = epochs * real["train_samples_per_epoch"] / train_ips
    eval_s = (real["test_images"] + epochs * real["val_images_per_epoch"]) / eval_ips
    if cuda:
        memory = {"peak_allocated_mib": round(clock.peak["allocated_mib"], 1),
                  "peak_reserved_mib": round(clock.peak["reserved_mib"], 1), "kind": "cuda max_memory_allocated"}
    else:
        memory = {"peak_rss_delta_mib": round((clock.peak["rss_kib"] - rss_before) / 1024, 1),
                  "kind": "peak RSS over the timed steps minus RSS before the fine-tune"
                          + ("" if clock.rss_reset else " (peak not resettable: the process's peak)")}
    last_loss = details["train_loss"][-1] if details.get("train_loss") else {}
    if not isinstance(last_loss, dict):  # the attribute fine-tune records one number per epoch (its BCE)
        last_loss = {"bce": last_loss}
    left_out = list(details.get("left_out", []))
    ran = (details.get("acceleration") or {}).get("precision", "fp32")
    precision = resolved.get("precision")
    if precision not in (None, "fp32") and ran == "fp32" and not any(n.startswith("precision") for n in left_out):
        left_out.append(f"precision {precision} (trained in fp32{' on the CPU' if device == 'cpu' else ''})")
    return {
        "recipe": name, "task": task.name, "backbone": backbone_spec or bench.backbone,
        "backbone_description": bench.description if backbone_spec is None else backbone_spec,
        "parameters": int(backbone.metadata.num_parameters or sum(p.numel() for p in backbone.module.parameters())),
        "device": device, "input_size": list(resolved["input"]["size"]),
        "trained_input": output.options.get("input_size"),
        "batch_size": sizes[0], "batch_size_recipe": int(recipe.sampler.batch_size),
        "batch_size_overridden": batch_size is not None, "precision": resolved.get("precision"),
        "left_out": left_out, "num_workers": workers,
        "warmup_steps": warmup, "timed_steps": steps, "timed_samples": sum(sizes),
        "timed_seconds": round(seconds, 3), "step_ms": round(1000 * seconds / steps, 1),
        "train_samples_per_s": round(train_ips, 2), "memory": memory,
        "eval_images": int(store.stats["images_encoded"]), "eval_images_per_s": round(eval_ips, 2),
        "twin_train_samples": int(details.get("num_train_samples", details["num_train_images"])),
        "final_loss": {k: round(float(v), 4) for k, v in last_loss.items()},
        "total_seconds": round(total, 1),
        "projection": {**real, "epochs": epochs, "train_hours": round(train_s / 3600, 3),
                       "eval_hours": round(eval_s / 3600, 3), "total_hours": round((train_s + eval_s) / 3600, 3)},
    }


# -- the command ----------------------------------------------------------------------------------------
def _parse_backbones(pairs: Sequence[str]) -> dict[str, str]:
    from plipbench.errors import ConfigError

    out = {}
    for pair in pairs:
        recipe, sep, spec = pair.partition("=")
        if not sep or recipe not in BENCHES or not spec:
            raise ConfigError(f"--backbone wants RECIPE=SPEC with RECIPE one of {', '.join(BENCHES)}, got {pair!r}")
        out[recipe] = spec
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    p.add_argument("--recipes", default=",".join(SHIPPED),
                   help=f"comma-separated, of {', '.join(SHIPPED)}")
    p.add_argument("--steps", type=int, default=20, help="timed steps per recipe")
    p.add_argument("--warmup-steps", type=int, default=3, help="steps run first and excluded from the timing")
    p.add_argument("--batch-size", type=int, default=None,
                   help="override the recipes' batch (for CPU feasibility; printed as an override)")
    p.add_argument("--identities", type=int, default=None, help="identities of the synthetic twin (preset's)")
    p.add_argument("--workers", type=int, default=0, help="training DataLoader workers")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--backbone", action="append", default=[], metavar="RECIPE=SPEC",
                   help="another backbone for one recipe, e.g. bot=random:timm/resnet18")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures as JSON")
    p.add_argument("--in-process", action="store_true",
                   help="run every recipe in this process (default: one fresh process each, so that the CPU "
                        "peak-memory deltas do not reuse an earlier recipe's freed memory)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one recipe, JSON only, no table
    return p


def _child_argv(args: argparse.Namespace, name: str, out: Path) -> list[str]:
    """The command line that benchmarks ``name`` alone in a fresh process with the same settings."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--recipes", name, "--json", str(out),
            "--device", args.device, "--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps),
            "--workers", str(args.workers), "--eval-batch-size", str(args.eval_batch_size)]
    for flag, value in (("--batch-size", args.batch_size), ("--identities", args.identities),
                        ("--threads", args.threads)):
        if value is not None:
            argv += [flag, str(value)]
    for pair in args.backbone:
        argv += ["--backbone", pair]
    return argv


def _bench_isolated(args: argparse.Namespace, name: str) -> dict[str, Any]:
    import subprocess
    import tempfile

    from plipbench.errors import PlipbenchError

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "one.json"
        done = subprocess.run(_child_argv(args, name, out), capture_output=True, text=True)
        if done.returncode != 0 or not out.is_file():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise PlipbenchError(f"benchmark {name} failed (exit {done.returncode}): "
                                 f"{lines[-1] if lines else 'no message'}")
        return json.loads(out.read_text())["results"][0]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark the requested recipes; returns ``{"hardware", "settings", "results", "skipped"}``."""
    import torch

    from plipbench.errors import ConfigError

    if args.steps < 1 or args.warmup_steps < 1:
        raise ConfigError(f"--steps and --warmup-steps must be >= 1, got {args.steps} and {args.warmup_steps}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: torch sees no CUDA device")
    if not (args.device == "cpu" or args.device.startswith("cuda")):
        raise ConfigError(f"--device must be cpu or cuda[:N], got {args.device!r}")
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SHIPPED]
    if unknown or not names:
        raise ConfigError(f"unknown recipe(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(SHIPPED)}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    backbones = _parse_backbones(args.backbone)
    skipped: dict[str, str] = {}  # every shipped recipe has a benchmark now; kept in the JSON for old readers
    results = []
    for name in names:
        if name in skipped:
            continue
        if not (args.in_process or args.child):
            results.append(_bench_isolated(args, name))
            continue
        results.append(bench_recipe(name, device=args.device, steps=args.steps, warmup=args.warmup_steps,
                                    batch_size=args.batch_size, identities=args.identities, workers=args.workers,
                                    eval_batch=args.eval_batch_size, backbone_spec=backbones.get(name)))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {"hardware": hardware(), "settings": settings, "results": results, "skipped": skipped}


def _hours(h: float) -> str:
    return f"{h * 60:.1f} min" if h < 1 else f"{h:.1f} h"


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=200)  # a log keeps the table whole
    table = Table(title="Recipe throughput (synthetic twin, fixed steps) and the projected full recipe")
    for col in ("recipe", "backbone", "input", "batch", "device", "train samples/s", "step", "peak memory",
                "eval img/s", "real set x epochs", "proj. train", "proj. total"):
        table.add_column(col, justify="left" if col in ("recipe", "backbone", "device") else "right")
    for r in report["results"]:
        mem = r["memory"]
        memory = (f"{mem['peak_allocated_mib'] / 1024:.2f} GiB" if "peak_allocated_mib" in mem
                  else f"{mem['peak_rss_delta_mib']:.0f} MiB RSS")
        proj = r["projection"]
        batch = f"{r['batch_size']}" + (f" (recipe {r['batch_size_recipe']})" if r["batch_size_overridden"] else "")
        table.add_row(
            r["recipe"], r["backbone"], "x".join(map(str, r["input_size"])), batch, r["device"],
            f"{r['train_samples_per_s']:.1f}", f"{r['step_ms']:.0f} ms", memory, f"{r['eval_images_per_s']:.1f}",
            f"{proj['train_samples_per_epoch']:,} x {proj['epochs']}", _hours(proj["train_hours"]),
            _hours(proj["total_hours"]),
        )
    console.print(table)
    hw = report["hardware"]
    console.print(f"hardware: {hw['cpu_model']} ({hw['cpu_count']} cores), torch {hw['torch']}, "
                  f"{hw['torch_threads']} threads" + (f", GPU {hw['gpu']}" if "gpu" in hw else ""), highlight=False)
    s = report["settings"]
    console.print(f"steps: {s['warmup_steps']} warm-up (not timed) + {s['steps']} timed; loader workers "
                  f"{s['workers']}; twin identities {s['identities'] or 'preset'}", highlight=False)
    if s["batch_size"] is not None:
        console.print(f"batch overridden to {s['batch_size']} for feasibility: the projection assumes that batch's "
                      "throughput, not the recipe's", highlight=False)
    for r in report["results"]:
        notes = [f"trained input {r['trained_input']}"] if r["trained_input"] not in (None, "recipe") else []
        notes += r["left_out"]
        if notes:
            console.print(f"{r['recipe']}: " + "; ".join(dict.fromkeys(notes)), highlight=False)
    for name, why in report["skipped"].items():
        console.print(f"{name}: skipped, {why}", highlight=False)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    report = run(args)
    if not args.child:
        render(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    from plipbench.errors import PlipbenchError

    try:
        main()
    except PlipbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)

