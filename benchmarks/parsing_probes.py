"""Cheap parsing protocols on a synthetic twin: does any separate the pre-trained mini models from their floor?

    python benchmarks/parsing_probes.py MODELS_DIR [--candidate NAME ...] [--seed 0] [--out DIR] [--list]

MODELS_DIR holds the nine pre-trained mini model folders ``plipbench bench --suite mini`` leaves under
``$PLIPBENCH_CACHE/pretrain/*/model``, named ``{plip-mini,clip-mini,random-init-plip-mini}-seed{0,1,2}-*`` (a
folder per model; ``plip:DIR`` is the backbone spec). For every candidate (a task plus a protocol and its options,
see :data:`CANDIDATES`) it runs ``plipbench eval`` once per model, as a subprocess and timed (the wall time of the
cell, process start and data loading included: what a CI cell costs), reads the result JSON and prints:

- per-seed test mIoU (%) of each family (CLIP-mini, PLIP-mini, floor = random-init PLIP-mini);
- each family's mean, the difference of the pre-trained 6 (CLIP-mini and PLIP-mini pooled) and of each family to
  the floor, and Welch's t-test p (two-sided, :func:`scipy.stats.ttest_ind` with ``equal_var=False``);
- seconds per cell (mean and max).

Used for issue 15's question: the mini suite gains a parsing column only where the random-init floor is
significantly below the pre-trained models at a CI-sized cost (about 60 s per cell on 2 cores). The candidates'
choices: the twin's ``input_size`` is the mini models' pre-training size (64 x 32, their ``image.input_size``) or
twice it; ``layers`` picks ModifiedResNet stage maps (0..3 = strides 4, 8, 16, 32; ``-1`` the last); the
PASCAL-Person-Part twin (7 classes derived from the same drawing) has fewer, larger parts than LIP's 20, so its
mIoU is less dominated by classes nobody learns in a few hundred steps. Run it with ``OMP_NUM_THREADS=1``
(one core per cell, as measured for the README).

Measured (2-core machine, OMP_NUM_THREADS=1, nice 19, protocol seed 0; mIoU %, means CLIP / PLIP / floor, Welch p of
the pooled 6 vs the floor's 3): ft64-ppp-last 10.90 / 10.92 / 11.05, p 0.018 (the floor *above*, 14 s/cell);
ft64-ppp-s8 18.11 / 17.75 / 17.41, p 0.25 (14 s); ft64-ppp-s8-lr 27.46 / 27.14 / 26.59, p 0.035 (15 s), but with
protocol seed 1 27.70 / 27.03 / 27.32, p 0.91; ft64-ppp-s8-lr600 32.52 / 32.12 / 31.53, p 0.089 (24 s);
ft128-ppp-s8-lr 21.89 / 21.88 / 20.97, p 0.32 (18 s); lp64-ppp-all 31.28 / 30.12 / 32.20, p 0.062 (the floor
above, 54 s). No candidate separates reproducibly: gaps are under 1 mIoU, the size of the seed noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# name -> (task, protocol, options). Options are passed as --option k=v (YAML values).
CANDIDATES: dict[str, tuple[str, str, dict[str, str]]] = {
    # fine-tune at the pre-training size, last map (stride 32: a 2 x 1 grid), PASCAL-Person-Part's 7 classes
    "ft64-ppp-last": ("synth-pascal-person-part", "fine-tune",
                      {"input_size": "[64,32]", "epochs": "3", "max_steps": "150", "batch_size": "16"}),
    # the same on the stride-8 map: finer output, the backbone's early stages trained
    "ft64-ppp-s8": ("synth-pascal-person-part", "fine-tune",
                    {"input_size": "[64,32]", "layers": "[1]", "epochs": "3", "max_steps": "150",
                     "batch_size": "16"}),
    # stride 8, 16 and 32 maps concatenated
    "ft64-ppp-s8-32": ("synth-pascal-person-part", "fine-tune",
                       {"input_size": "[64,32]", "layers": "[1,2,3]", "epochs": "3", "max_steps": "150",
                        "batch_size": "16"}),
    # stride 8 at a 10x higher lr (1e-3, head 1e-2) and twice the steps: 150 steps at 1e-4 stay near background
    "ft64-ppp-s8-lr": ("synth-pascal-person-part", "fine-tune",
                       {"input_size": "[64,32]", "layers": "[1]", "lr": "0.001", "epochs": "4", "max_steps": "300",
                        "batch_size": "16"}),
    # the same with twice the steps (8 epochs of 75, 600 steps)
    "ft64-ppp-s8-lr600": ("synth-pascal-person-part", "fine-tune",
                          {"input_size": "[64,32]", "layers": "[1]", "lr": "0.001", "epochs": "8",
                           "max_steps": "600", "batch_size": "16"}),
    # twice the pre-training size (128 x 64), stride 8 (a 16 x 8 map), the higher lr
    "ft128-ppp-s8-lr": ("synth-pascal-person-part", "fine-tune",
                        {"input_size": "[128,64]", "layers": "[1]", "lr": "0.001", "epochs": "2", "max_steps": "150",
                         "batch_size": "16"}),
    # LIP's 20 classes, stride 8
    "ft64-lip-s8": ("synth-lip", "fine-tune",
                    {"input_size": "[64,32]", "layers": "[1]", "epochs": "3", "max_steps": "150",
                     "batch_size": "16"}),
    # frozen probe at the pre-training size, stride-4..32 maps concatenated, many cheap epochs
    "lp64-ppp-all": ("synth-pascal-person-part", "linear-probe",
                     {"input_size": "[64,32]", "layers": "[0,1,2,3]", "epochs": "30"}),
    "lp64-lip-all": ("synth-lip", "linear-probe",
                     {"input_size": "[64,32]", "layers": "[0,1,2,3]", "epochs": "30"}),
}

FAMILIES = ("clip-mini", "plip-mini", "random-init-plip-mini")
LABELS = {"clip-mini": "CLIP-mini", "plip-mini": "PLIP-mini", "random-init-plip-mini": "floor"}


def models(root: Path) -> dict[str, list[Path]]:
    """The model folders under ``root`` by family, seeds 0, 1, 2 in order; a one-line error when one is missing."""
    out: dict[str, list[Path]] = {}
    for family in FAMILIES:
        found = []
        for seed in range(3):
            hits = sorted(p for p in root.glob(f"{family}-seed{seed}-*") if (p / "config.json").is_file())
            if not hits:
                sys.exit(f"error: no {family}-seed{seed}-* model folder (with config.json) under {root}")
            found.append(hits[0])
        out[family] = found
    return out


def run_cell(model: Path, candidate: str, seed: int, out: Path) -> tuple[float, float]:
    """(test mIoU %, wall seconds) of one ``plipbench eval`` cell; reuses a result already in ``out``."""
    task, protocol, options = CANDIDATES[candidate]
    cell = out / candidate / model.name
    timing = cell / "seconds.txt"
    results = sorted(cell.glob(f"*__{protocol}__seed{seed}.json")) if cell.is_dir() else []
    if not (results and timing.is_file()):
        cmd = [sys.executable, "-m", "plipbench.cli", "eval", "--task", task, "--model", f"plip:{model}",
               "--protocol", protocol, "--out", str(cell), "--seed", str(seed), "--overwrite"]
        for key, value in options.items():
            cmd += ["--option", f"{key}={value}"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"error: {candidate} on {model.name} failed (exit {proc.returncode}): "
                     f"{proc.stderr.strip().splitlines()[-1:] or proc.stdout.strip().splitlines()[-1:]}")
        timing.write_text(f"{seconds:.2f}\n")
        results = sorted(cell.glob(f"*__{protocol}__seed{seed}.json"))
        if not results:
            sys.exit(f"error: {candidate} on {model.name} wrote no result JSON under {cell}")
    score = json.loads(results[0].read_text())["scores"]["mIoU"] * 100
    return score, float(timing.read_text())


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """Welch's t and two-sided p of mean(a) - mean(b)."""
    from scipy.stats import ttest_ind

    res = ttest_ind(a, b, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def report(candidate: str, scores: dict[str, list[float]], seconds: list[float]) -> str:
    task, protocol, options = CANDIDATES[candidate]
    opts = " ".join(f"{k}={v}" for k, v in options.items())
    lines = [f"## {candidate}: {task} {protocol} {opts}"]
    for family in FAMILIES:
        vals = scores[family]
        lines.append(f"  {LABELS[family]:9s} " + " ".join(f"{v:6.2f}" for v in vals)
                     + f"   mean {sum(vals) / len(vals):6.2f}")
    floor = scores["random-init-plip-mini"]
    pre = scores["clip-mini"] + scores["plip-mini"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    for name, vals in (("pre-trained 6", pre), ("CLIP-mini", scores["clip-mini"]),
                       ("PLIP-mini", scores["plip-mini"])):
        t, p = welch(vals, floor)
        lines.append(f"  {name} - floor: {mean(vals) - mean(floor):+6.2f} mIoU  Welch t {t:6.2f}  p {p:.4f}")
    lines.append(f"  seconds per cell: mean {mean(seconds):.1f}, max {max(seconds):.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models_dir", type=Path, nargs="?")
    parser.add_argument("--candidate", action="append", choices=sorted(CANDIDATES),
                        help="repeatable; default: all")
    parser.add_argument("--seed", type=int, default=0, help="the protocol's training seed (one per cell)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/parsing-probes"))
    parser.add_argument("--list", action="store_true", help="print the candidates and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, (task, protocol, options) in CANDIDATES.items():
            print(name, task, protocol, " ".join(f"{k}={v}" for k, v in options.items()))
        return 0
    if args.models_dir is None:
        parser.error("MODELS_DIR is required")
    found = models(args.models_dir)
    for candidate in args.candidate or list(CANDIDATES):
        scores: dict[str, list[float]] = {f: [] for f in FAMILIES}
        seconds: list[float] = []
        for family in FAMILIES:
            for model in found[family]:
                score, secs = run_cell(model, candidate, args.seed, args.out)
                scores[family].append(score)
                seconds.append(secs)
        print(report(candidate, scores, seconds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
