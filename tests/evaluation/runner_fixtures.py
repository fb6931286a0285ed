"""A tiny task folder (synthetic twins at toy sizes + one real task with absent data) for runner tests."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_tiny_tasks(root: Path, *, real_root: Path) -> Path:
    def write(name: str, tree: dict) -> None:
        path = root / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(tree))

    write("tiny-text", {
        "name": "tiny-text", "kind": "text-reid", "family": "text-reid", "synthetic": True,
        "dataset": {"layout": "cuhk-pedes", "synthetic": {"preset": "synth-cuhk", "identities": 24, "images_per_id": 2}},
        "protocols": ["zero-shot", {"name": "zero-shot-half", "base": "zero-shot", "train_fraction": 0.5}],
        "main_score": "R@1", "metric_options": {"ks": [1, 5, 10]},
    })
    write("tiny-image", {
        "name": "tiny-image", "kind": "image-reid", "family": "image-reid", "synthetic": True,
        "dataset": {"layout": "market1501", "synthetic": {"preset": "synth-market", "identities": 24,
                                                          "images_per_id": 4}},
        "splits": {"val": None}, "protocols": ["zero-shot"], "main_score": "mAP",
        "metric_options": {"metric": "cosine", "ap": "noninterp", "max_rank": 10},
    })
    write("real-text", {
        "name": "real-text", "kind": "text-reid", "family": "text-reid",
        "dataset": {"layout": "cuhk-pedes", "root": str(real_root / "CUHK-PEDES")},
        "protocols": ["zero-shot"], "main_score": "R@1",
    })
    write("suites/tiny", {"name": "tiny", "tasks": ["tiny-text", "tiny-image", "real-text"]})
    return root
