"""Speed and memory of plipbench.metrics at the shapes of the real datasets (synthetic features).

Run: ``python benchmarks/metrics.py [--quick]`` (``--quick`` divides every shape by 8 and skips torchreid's
full-size run). Prints, per scenario, plipbench's time and the reference figure to compare with:

- Market-1501 (3,368 x 15,913, 751 ids, 6 cameras) from a distance matrix: plipbench vs torchreid's Python
  ``eval_market1501`` in the same run, their ratio, and both CMC/mAP (must be identical);
- MSMT17 (11,659 x 82,161, 512-d) from features, in a subprocess: wall time, the subprocess's peak RSS, and
  the time of the bare chunked similarity matmul for the same shapes;
- CUHK-PEDES (6,156 x 3,074) and ICFG-PEDES (19,848 x 19,848) text-to-image retrieval from features.

Features are identity centroids plus noise (so positives rank realistically near the top, as with a
trained model); timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np


def _features(rng, cent, pids, noise):
    out = rng.standard_normal((len(pids), cent.shape[1]), dtype=np.float32)
    out *= noise
    out += cent[pids]
    return out


def _reid_problem(seed, n_q, n_g, n_ids, n_cams, dim, noise):
    rng = np.random.default_rng(seed)
    g_pids = rng.integers(0, n_ids, n_g)
    q_pids = g_pids[rng.integers(0, n_g, n_q)]
    cent = rng.standard_normal((n_ids, dim), dtype=np.float32)
    return dict(
        query_features=_features(rng, cent, q_pids, noise),
        gallery_features=_features(rng, cent, g_pids, noise),
        q_pids=q_pids, g_pids=g_pids, q_camids=rng.integers(0, n_cams, n_q), g_camids=rng.integers(0, n_cams, n_g),
    )


def market(scale: int, run_torchreid: bool) -> None:
    import torch

    from plipbench.metrics import evaluate_reid

    p = _reid_problem(0, 3368 // scale, 15913 // scale, max(2, 751 // scale), 6, 128, 1.5)
    qf, gf = torch.from_numpy(p.pop("query_features")), torch.from_numpy(p.pop("gallery_features"))
    qf, gf = qf.double(), gf.double()
    distmat = ((qf**2).sum(1)[:, None] + (gf**2).sum(1)[None] - 2 * qf @ gf.T).numpy()
    t = time.perf_counter()
    ours = evaluate_reid(distmat, **p)
    t_ours = time.perf_counter() - t
    print(f"[market1501 {distmat.shape[0]}x{distmat.shape[1]} from distmat] plipbench {t_ours:.2f} s  "
          f"mAP {ours['mAP']:.6f} R1 {ours['cmc'][0]:.6f} R5 {ours['cmc'][4]:.6f} mINP {ours['mINP']:.6f}")
    if run_torchreid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchreid.reid.metrics.rank import eval_market1501
        t = time.perf_counter()
        cmc, m_ap = eval_market1501(distmat, p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"], 50)
        t_ref = time.perf_counter() - t
        print(f"  torchreid python {t_ref:.2f} s  mAP {m_ap:.6f} R1 {cmc[0]:.6f} R5 {cmc[4]:.6f}  "
              f"ratio {t_ref / t_ours:.1f}x  max|dCMC| {np.abs(cmc - ours['cmc']).max():.2e}  "
              f"|dmAP| {abs(m_ap - ours['mAP']):.2e}")


def _msmt_child(scale: int) -> None:
    """Runs in a subprocess: evaluate from features and print timings as JSON."""
    import torch

    from plipbench.metrics import evaluate_reid

    p = _reid_problem(1, 11659 // scale, 82161 // scale, max(2, 3060 // scale), 15, 512, 2.0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _reset_peak_rss()  # so that the peak below is the evaluation's, not the data generation's
    t = time.perf_counter()
    r = evaluate_reid(**p)
    t_eval = time.perf_counter() - t
    eval_peak_kib = _peak_rss_kib()
    qf, gf = torch.from_numpy(p["query_features"]), torch.from_numpy(p["gallery_features"])
    gft = gf.t().contiguous()
    chunk = r["protocol"]["chunk_size"]
    t = time.perf_counter()
    for s in range(0, len(qf), chunk):
        (qf[s:s + chunk] @ gft).max()
    t_mm = time.perf_counter() - t
    print(json.dumps(dict(t_eval=t_eval, t_mm=t_mm, mAP=r["mAP"], r1=float(r["cmc"][0]), mINP=r["mINP"],
                          chunk=chunk, rss_before_eval_kib=base, eval_peak_kib=eval_peak_kib,
                          shape=[len(qf), len(gf)])))


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM (the peak resident set) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss_kib() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def msmt(scale: int) -> None:
    out = subprocess.run([sys.executable, __file__, "--msmt-child", str(scale)], check=True, capture_output=True,
                         text=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"[msmt17 {r['shape'][0]}x{r['shape'][1]} 512-d from features] plipbench {r['t_eval']:.2f} s, "
          f"bare chunked matmul {r['t_mm']:.2f} s (ratio {r['t_eval'] / r['t_mm']:.2f}x), "
          f"peak RSS of the subprocess {peak_kib / 2**20:.2f} GiB (data generation included), peak RSS "
          f"during the evaluation {(r['eval_peak_kib'] or 0) / 2**20:.2f} GiB (features included), "
          f"chunk {r['chunk']} queries; "
          f"mAP {r['mAP']:.4f} R1 {r['r1']:.4f} mINP {r['mINP']:.4f}")


def text(name: str, n_q: int, n_g: int, n_ids: int, scale: int) -> None:
    from plipbench.metrics import evaluate_retrieval

    rng = np.random.default_rng(2)
    n_q, n_g, n_ids = n_q // scale, n_g // scale, max(2, n_ids // scale)
    g_pids = np.arange(n_g) % n_ids
    q_pids = g_pids[rng.integers(0, n_g, n_q)]
    cent = rng.standard_normal((n_ids, 512), dtype=np.float32)
    qf, gf = _features(rng, cent, q_pids, 2.0), _features(rng, cent, g_pids, 2.0)
    t = time.perf_counter()
    r = evaluate_retrieval(query_features=qf, gallery_features=gf, q_pids=q_pids, g_pids=g_pids)
    print(f"[{name} {n_q}x{n_g} text-to-image from features] plipbench {time.perf_counter() - t:.2f} s  "
          f"R@1 {r['R@1']:.4f} R@10 {r['R@10']:.4f} mAP {r['mAP']:.4f} mINP {r['mINP']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shapes divided by 8, no full-size torchreid run")
    parser.add_argument("--msmt-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.msmt_child is not None:
        _msmt_child(args.msmt_child)
        return
    import torch

    scale = 8 if args.quick else 1
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, scale 1/{scale}")
    market(scale, run_torchreid=True)
    msmt(scale)
    text("cuhk-pedes", 6156, 3074, 1000, scale)
    text("icfg-pedes", 19848, 19848, 1000, scale)


if __name__ == "__main__":
    main()
