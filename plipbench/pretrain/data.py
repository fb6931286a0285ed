"""Captioned person images for pre-training: records -> (image, caption, attribute-phrase spans).

Every random choice (which caption of the image, horizontal flip) is drawn from a generator seeded
by ``(seed, epoch, index)``, so a batch is the same whatever the number of loader workers and a
resumed run sees exactly the batches it would have seen.

Attribute phrases (for IAP): the synthetic generator writes their character spans in its sidecar
(``plipbench_synth_annotations.json``); otherwise the six-slot SYNTH-PEDES attribute string is
located in the caption with :func:`~plipbench.pretrain.attribute_prediction.locate_phrases`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plipbench.data.decoded import DecodedImages, decoded_images, pretrain_resize
from plipbench.data.records import PersonRecord
from plipbench.errors import DataError
from plipbench.pretrain.attribute_prediction import locate_phrases, token_phrase_index

SIDECAR = "plipbench_synth_annotations.json"


def load_phrase_spans(root: Path) -> dict[str, list[list[tuple[int, int, int]]]]:
    """``relative image path -> per caption [(start, end, slot index), ...]`` from the generator's sidecar."""
    path = Path(root) / SIDECAR
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err.msg} at line {err.lineno})") from err
    slots: dict[str, int] = {}
    out: dict[str, list[list[tuple[int, int, int]]]] = {}
    for rel, entry in raw.items():
        per_caption = []
        for spans in entry.get("phrase_spans", []):
            per_caption.append([(int(s), int(e), slots.setdefault(str(slot), len(slots))) for s, e, slot in spans])
        out[rel] = per_caption
    return out


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 array (H, W, 3) resized to ``size`` (H, W) with bicubic interpolation."""
    from plipbench.data.decoded import decode_image, pretrain_resize

    return decode_image(path, pretrain_resize(size))


class CaptionedImages(torch.utils.data.Dataset):
    """Image/caption pairs; one item per image, a caption drawn per (seed, epoch, index)."""

    def __init__(
        self,
        records: Sequence[PersonRecord],
        *,
        root: Path,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        flip: float = 0.5,
        seed: int = 0,
        preload: bool = True,
    ) -> None:
        self.records = [r for r in records if r.captions]
        if not self.records:
            raise DataError(root, "the corpus has no captioned image (every record's caption list is empty)")
        empty = [r for r in self.records if any(not c.strip() for c in r.captions)]
        if empty:
            raise DataError(root, f"{len(empty)} record(s) have an empty caption, e.g. {empty[0].image_path}")
        self.root, self.size, self.flip, self.seed = Path(root), tuple(size), flip, seed
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.epoch = 0
        sidecar = load_phrase_spans(self.root)
        self.spans: list[list[list[tuple[int, int, int]]]] = []
        for r in self.records:
            rel = _relative(r.image_path, self.root)
            if rel in sidecar and len(sidecar[rel]) == len(r.captions):
                self.spans.append(sidecar[rel])
            else:
                self.spans.append([locate_phrases(c, r.attribute_phrases) for c in r.captions])
        self.pids = [r.pid for r in self.records]
        self._pixels: DecodedImages | None = None
        if preload:  # decoded once per corpus and size into $PLIPBENCH_CACHE/decoded, shared by every run
            self._pixels = decoded_images(self.records, pretrain_resize(self.size))

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        pixels = self._pixels[index] if self._pixels is not None else load_image(record.image_path, self.size)
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div_(255.0)
        if rng.random() < self.flip:
            image = image.flip(-1)
        choice = int(rng.integers(len(record.captions)))
        return {
            "image": (image - self.mean) / self.std,
            "caption": record.captions[choice],
            "spans": self.spans[index][choice],
            "pid": record.pid,
            "index": index,
        }


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


class CaptionCollator:
    """Stack images and tokenise captions; ``token_phrase`` marks each token's attribute phrase (-1: none)."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            [it["caption"] for it in items],
            padding="longest",  # dynamic: attention never runs over padding beyond the batch's longest caption
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        token_phrase = torch.tensor(
            [token_phrase_index(offsets.tolist(), it["spans"]) for offsets, it in zip(enc["offset_mapping"], items, strict=True)],
            dtype=torch.long,
        )
        return {
            "images": torch.stack([it["image"] for it in items]),
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "token_phrase": token_phrase,
            "pids": torch.tensor([it["pid"] for it in items], dtype=torch.long),
            "indices": torch.tensor([it["index"] for it in items], dtype=torch.long),
        }
