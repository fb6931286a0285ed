"""The decoded-image cache: bit-identical model inputs to the per-item loaders it replaces, one decode per
image list and size, corrupt entries rebuilt, undecodable images refused with the file named."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from plipbench.data import decoded as decoded_mod
from plipbench.data.decoded import (
    decoded_images,
    pretrain_resize,
    to_model_input,
    transform_resize,
)
from plipbench.data.records import PersonRecord
from plipbench.errors import DataError
from plipbench.models.backbone import build_torchvision_transform
from plipbench.models.metadata import SYNTH_PEDES_MEAN, SYNTH_PEDES_STD, ImageTransform

torch.set_num_threads(1)

TRANSFORMS = [
    ImageTransform(size=(64, 32), mean=SYNTH_PEDES_MEAN, std=SYNTH_PEDES_STD, interpolation="bicubic"),
    ImageTransform(size=(48, 24), mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.25), interpolation="bilinear"),
    ImageTransform(size=(32, 32), mean=(0.48, 0.45, 0.4), std=(0.26, 0.26, 0.27), resize="crop", crop_pct=0.875),
]


def _images(root: Path, n: int = 12) -> list[PersonRecord]:
    """JPEG, PNG (RGBA, greyscale), at the target size and not, tall and wide."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        h, w = [(128, 64), (64, 32), (97, 41), (40, 90)][i % 4]
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if i % 5 == 3:
            image, name = Image.fromarray(pixels[:, :, 0], "L"), f"{i}.png"
        elif i % 5 == 4:
            image, name = Image.fromarray(np.dstack([pixels, pixels[:, :, :1]]), "RGBA"), f"{i}.png"
        else:
            image, name = Image.fromarray(pixels), f"{i}.jpg"
        image.save(root / name)
        records.append(PersonRecord(image_path=root / name, pid=i // 2))
    return records


def _legacy_item(path: Path, spec: ImageTransform) -> torch.Tensor:
    """features.RecordImages / TrainingImages as of 68e54db: PIL decode, RGB, the torchvision transform."""
    with Image.open(path) as img:
        return build_torchvision_transform(spec)(img.convert("RGB"))


def _legacy_pretrain_pixels(path: Path, size: tuple[int, int]) -> np.ndarray:
    """pretrain.data.load_image as of 68e54db."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)


@pytest.mark.parametrize("spec", TRANSFORMS, ids=["bicubic", "bilinear", "crop"])
def test_model_inputs_are_bit_identical_to_the_per_item_transform(tmp_path, spec) -> None:
    records = _images(tmp_path)
    pixels = decoded_images(records, transform_resize(spec), cache_dir=tmp_path / "cache")
    legacy = torch.stack([_legacy_item(r.image_path, spec) for r in records])
    batched = to_model_input(pixels[:], spec.mean, spec.std)
    assert batched.is_contiguous() and batched.dtype == torch.float32
    assert torch.equal(batched, legacy)  # bit-equality, not allclose
    for i in range(len(records)):
        assert torch.equal(to_model_input(pixels[i], spec.mean, spec.std), legacy[i])
    # and from a warm cache (the memory-mapped file) as well
    again = decoded_images(records, transform_resize(spec), cache_dir=tmp_path / "cache")
    assert torch.equal(to_model_input(again[:], spec.mean, spec.std), legacy)


def test_pretrain_pixels_are_bit_identical_to_the_legacy_preload(tmp_path) -> None:
    records = _images(tmp_path)
    pixels = decoded_images(records, pretrain_resize((64, 32)), cache_dir=tmp_path / "cache")
    legacy = np.stack([_legacy_pretrain_pixels(r.image_path, (64, 32)) for r in records])
    assert pixels[:].dtype == np.uint8 and np.array_equal(pixels[:], legacy)


def test_pretrain_dataset_items_are_unchanged(tmp_path, monkeypatch) -> None:
    from plipbench.pretrain.data import CaptionedImages

    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    records = [PersonRecord(image_path=r.image_path, pid=r.pid, captions=("a man in a red coat", "a bag"))
               for r in _images(tmp_path)]
    kwargs = {"root": tmp_path, "size": (64, 32), "mean": SYNTH_PEDES_MEAN, "std": SYNTH_PEDES_STD}
    cached = CaptionedImages(records, **kwargs)
    direct = CaptionedImages(records, **kwargs, preload=False)  # decodes each item (the legacy per-item path)
    assert any((tmp_path / "cache" / "decoded").glob("*.npy"))
    for i in range(len(records)):
        assert torch.equal(cached[i]["image"], direct[i]["image"])
        pixels = torch.from_numpy(_legacy_pretrain_pixels(records[i].image_path, (64, 32)).copy())
        image = pixels.permute(2, 0, 1).float().div_(255.0)
        if np.random.default_rng([0, 0, i]).random() < 0.5:
            image = image.flip(-1)
        mean = torch.tensor(SYNTH_PEDES_MEAN)[:, None, None]
        std = torch.tensor(SYNTH_PEDES_STD)[:, None, None]
        assert torch.equal(cached[i]["image"], (image - mean) / std)


def test_feature_extraction_is_bit_identical_to_the_legacy_loader(tmp_path, monkeypatch) -> None:
    from plipbench.evaluation.features import FeatureStore, RecordImages
    from plipbench.models.backbone import ModuleBackbone
    from plipbench.models.metadata import BackboneMetadata

    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                 torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    meta = BackboneMetadata(name="tiny", family="test", embedding_dim=8, num_parameters=1)
    backbone = ModuleBackbone(module, meta, TRANSFORMS[0])
    records = _images(tmp_path)
    store = FeatureStore(backbone, batch_size=5)
    for flip in (False, True):
        loader = torch.utils.data.DataLoader(
            RecordImages(records, build_torchvision_transform(backbone.image_transform), flip), batch_size=5)
        legacy = torch.cat([backbone.encode_image(b) for b in loader])
        assert torch.equal(store.encode_images_with(backbone, records, flip=flip), legacy)


def test_training_images_use_the_cache_with_identical_items(tmp_path, monkeypatch) -> None:
    from plipbench.evaluation.protocols._training import TrainingImages

    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    records = _images(tmp_path)
    spec = TRANSFORMS[1]
    cached = TrainingImages(records, spec, list(range(len(records))), seed=3)
    legacy = TrainingImages(records, build_torchvision_transform(spec), list(range(len(records))), seed=3)
    for epoch in (0, 1):
        cached.set_epoch(epoch)
        legacy.set_epoch(epoch)
        for i in range(len(records)):
            a, b = cached[i], legacy[i]
            assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_decodes_once_and_is_shared_by_every_caller(tmp_path, monkeypatch) -> None:
    records = _images(tmp_path, n=4)
    calls = []
    real = decoded_mod.decode_image
    monkeypatch.setattr(decoded_mod, "decode_image", lambda p, r: calls.append(p) or real(p, r))
    first = decoded_images(records, pretrain_resize((64, 32)), cache_dir=tmp_path / "c")
    second = decoded_images(records, pretrain_resize((64, 32)), cache_dir=tmp_path / "c")
    assert len(calls) == 4 and first.path == second.path
    assert isinstance(second.array, np.memmap)  # bounded memory: pages are read on demand
    decoded_images(records, pretrain_resize((32, 16)), cache_dir=tmp_path / "c")  # another size: another entry
    assert len(calls) == 8
    os.utime(records[0].image_path, ns=(1, 1))  # a changed file: another key
    decoded_images(records, pretrain_resize((64, 32)), cache_dir=tmp_path / "c")
    assert len(calls) == 12
    restored = pickle.loads(pickle.dumps(second))  # loader workers reopen the file instead of copying it
    assert restored._array is None and np.array_equal(restored[:], second[:])


@pytest.mark.parametrize("damage", ["truncate", "foreign", "shape", "garbage"])
def test_corrupt_entry_is_rebuilt_with_one_warning(tmp_path, capsys, damage) -> None:
    records = _images(tmp_path, n=4)
    good = decoded_images(records, pretrain_resize((64, 32)), cache_dir=tmp_path / "c")
    expected = good[:]
    path = good.path
    del good
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "foreign":
        np.save(path, np.zeros((4, 64, 32, 3), dtype=np.float32))
    elif damage == "shape":
        np.save(path, np.zeros((3, 64, 32, 3), dtype=np.uint8))
    else:
        path.write_bytes(b"not an npy file")
    capsys.readouterr()
    again = decoded_images(records, pretrain_resize((64, 32)), cache_dir=tmp_path / "c")
    assert np.array_equal(again[:], expected)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and str(path) in err[0]


def test_undecodable_image_is_a_data_error_naming_the_file(tmp_path) -> None:
    records = _images(tmp_path, n=3)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="bad.jpg: cannot decode image"):
        decoded_images([*records, PersonRecord(image_path=bad, pid=0)], pretrain_resize((64, 32)),
                       cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.npy")) and not list((tmp_path / "c").glob(".*.tmp"))


def test_decompression_bomb_is_a_data_error_naming_the_file(tmp_path, monkeypatch) -> None:
    records = _images(tmp_path, n=2)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 128x64 > 2 x 100 pixels: a "bomb"
    with pytest.raises(DataError, match=r"0\.jpg: .*decompression bomb"):
        decoded_images(records, transform_resize(TRANSFORMS[0]), cache_dir=tmp_path / "c")


def test_missing_image_is_a_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match="image file not found"):
        decoded_images([PersonRecord(image_path=tmp_path / "gone.jpg", pid=0)], pretrain_resize((8, 4)),
                       cache_dir=tmp_path / "c")
