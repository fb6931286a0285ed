"""The recipe runs' training images from the decoded-image cache: the same tensors, draw for draw, as the
pipeline run on each PIL image decoded from its file every epoch, and each distinct file decoded once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from protocol_fixtures import image_only_backbone

from plipbench.evaluation.protocols.recipe_run import RecipeImages, recipe_train_images
from plipbench.recipes import build_train_transform, resolve_recipe


@pytest.fixture()
def records(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    out = []
    # sizes around the recipes' (64 x 32 here): larger, smaller, another aspect, and exactly the size
    for i, (h, w) in enumerate([(128, 64), (50, 21), (97, 60), (64, 32), (128, 64)]):
        path = Path(tmp_path) / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        out.append(SimpleNamespace(image_path=str(path), captions=["a", "b"], pid=i % 2))
    return out


@pytest.mark.parametrize("name, dataset", [("bot", None), ("bot-bicubic", None), ("rethinking", "pa100k")])
def test_decoded_images_give_the_pipeline_s_tensors(records, name, dataset) -> None:
    """bot (pad, crop, erasing, bilinear), bot at bicubic (plip-cmpmc's interpolation), rethinking (its pad and
    crop): every item of two epochs is bit-equal to the per-epoch decode."""
    backbone = image_only_backbone()
    overrides = {"input.size": [64, 32]}
    if name.startswith("bot"):
        overrides["augment.random_erasing.probability"] = 0.9
    if name == "bot-bicubic":
        overrides["input.train_interpolation"] = "bicubic"
    resolved = resolve_recipe(name.split("-")[0], backbone, overrides, dataset=dataset)
    labels = [r.pid for r in records]
    from_files = RecipeImages(records, build_train_transform(resolved), labels, seed=3)
    cached = recipe_train_images(records, resolved, labels, seed=3)
    for epoch in (0, 1):
        from_files.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(records)):
            a, b = from_files[i], cached[i]
            assert a[0].shape == (3, 64, 32)
            assert torch.equal(a[0], b[0]), (name, epoch, i)
            assert a[1:] == b[1:]
    # the draws are not all the same: the epochs differ
    cached.set_epoch(0)
    first = cached[0][0]
    cached.set_epoch(1)
    assert not torch.equal(first, cached[0][0])


def test_each_distinct_file_is_decoded_once(records) -> None:
    """Text ReID repeats an image once per caption: the cache holds each file once and maps the rows back."""
    backbone = image_only_backbone()
    resolved = resolve_recipe("bot", backbone, {"input.size": [64, 32]})
    repeated = [records[0], records[1], records[0], records[2], records[1]]
    images = recipe_train_images(repeated, resolved, [0] * 5, seed=0)
    pixels, rows = images._decoded
    assert len(pixels) == 3
    assert rows == [0, 1, 0, 2, 1]
    with Image.open(records[1].image_path) as img:
        expected = np.asarray(img.convert("RGB").resize((32, 64), Image.Resampling.BILINEAR))
    assert np.array_equal(pixels[1], expected)
