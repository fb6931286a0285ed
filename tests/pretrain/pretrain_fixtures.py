"""A tiny captioned corpus in the SYNTH-PEDES layout and a tiny config, for the trainer tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = ["red", "blue", "green", "black", "white", "yellow"]


def write_tiny_corpus(root: Path, identities: int = 6, images_per_id: int = 3) -> Path:
    rng = np.random.default_rng(0)
    records = []
    for pid in range(identities):
        upper, lower = COLOURS[pid % 6], COLOURS[(pid * 2 + 1) % 6]
        for k in range(images_per_id):
            rel = f"Part1/{pid}/{k}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 40, size=(64, 32, 3), dtype=np.uint8)
            pixels[8:32] += np.array([40 * (pid % 6), 30, 200 - 30 * (pid % 6)], dtype=np.uint8)
            Image.fromarray(pixels).save(root / rel, quality=90)
            records.append({
                "id": pid,
                "file_path": rel,
                "attributes": [f"man,black hair,{upper} shirt,{lower} trousers,black shoes,unknown"],
                "captions": [
                    f"A man with black hair wearing a {upper} shirt and {lower} trousers.",
                    f"The man wears {lower} trousers and a {upper} shirt with black shoes.",
                ],
                "prompt_caption": [f"A man in a {upper} shirt."],
            })
    (root / "synthpedes_dataset.json").write_text(json.dumps(records))
    return root


def tiny_config_tree(root: Path, **objectives: float) -> dict:
    return {
        "name": "tiny",
        "model": "plip-mini",
        "model_overrides": {
            "image.width": 8, "image.input_size": [64, 32], "image.heads": 2, "joint_dim": 32,
            "text.bert.hidden_size": 32, "text.bert.num_hidden_layers": 1, "text.bert.num_attention_heads": 2,
            "text.bert.intermediate_size": 64, "text.bert.vocab_size": 120, "max_length": 24,
        },
        "data": {"preset": None, "root": str(root), "layout": "synth-pedes"},
        "objectives": {"ivlc": 1.0, "tic": 0.02, "iap": 0.1, "clip": 0.0} | objectives,
        "tic": {"neck_dim": 8},
        "iap": {"heads": 2},
        "sampler": {"identities_per_batch": 2, "images_per_identity": 2},
        "optim": {"name": "adamw", "lr": 0.001, "warmup_epochs": 1, "milestones": [3], "epochs": 4},
        "train": {"seed": 0, "checkpoint_every": 2, "log_every": 1, "threads": 1},
    }

