"""Decompression bombs: every image decode refuses more than MAX_PIXELS with a DataError naming the file."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import pytest
from fixtures_readers import make_market, write_image
from PIL import Image
from typer.testing import CliRunner

from plipbench.cli import app
from plipbench.data.check import check_dataset, decode_problem
from plipbench.data.images import MAX_PIXELS, open_rgb
from plipbench.data.records import PersonRecord
from plipbench.errors import DataError


def declared_png(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width`` x ``height`` (PIL refuses it at open for 30000 x 30000)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path


def real_big_png(path: Path, width: int = 9000, height: int = 11000) -> Path:
    """A valid 1-bit PNG of 99 megapixels, about 12 KB on disk, that PIL would decode in full."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("1", (width, height)).save(path)
    return path


def test_limit_fits_person_crops_and_scene_frames():
    assert 8000 * 5000 <= MAX_PIXELS < 89_478_485  # PIL's own warning threshold


def test_open_rgb_decodes_a_normal_image(tmp_path):
    img = open_rgb(write_image(tmp_path / "a.png"))
    assert img.mode == "RGB" and img.size == (8, 16)


@pytest.mark.parametrize("size", [(30000, 30000), (9000, 11000), (MAX_PIXELS // 1000 + 1, 1000)])
def test_bomb_is_a_data_error_naming_the_file(tmp_path, size):
    path = declared_png(tmp_path / "bomb.png", *size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape either
        with pytest.raises(DataError, match="limit of 40 megapixels") as err:
            open_rgb(path)
    assert err.value.path == path


def test_broken_and_missing_files_are_data_errors(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot decode image") as err:
        open_rgb(broken)
    assert err.value.path == broken
    with pytest.raises(DataError, match="cannot decode image"):
        open_rgb(tmp_path / "missing.jpg")


def test_every_stage_refuses_the_bomb(tmp_path):
    from plipbench.evaluation.features import RecordImages
    from plipbench.evaluation.protocols._training import TrainingImages
    from plipbench.pretrain.data import load_image

    bomb = declared_png(tmp_path / "0001_c1s1_000001_00.png", 30000, 30000)
    with pytest.raises(DataError, match="limit of 40 megapixels") as err:
        load_image(bomb, (16, 8))
    assert err.value.path == bomb
    records = [PersonRecord(image_path=bomb, pid=1)]
    with pytest.raises(DataError) as err:
        RecordImages(records, transform=lambda img: img)[0]
    assert err.value.path == bomb
    with pytest.raises(DataError) as err:
        TrainingImages(records, transform=lambda img: img, labels=[0], seed=0)[0]
    assert err.value.path == bomb


def test_data_check_reports_a_99_megapixel_png(tmp_path):
    make_market(tmp_path)
    big = real_big_png(tmp_path / "bounding_box_test" / "0001_c3s1_000001_00.png")
    assert "limit of 40 megapixels" in (decode_problem(big) or "")
    report = check_dataset("market1501", tmp_path)
    assert [p for p, _ in report.unreadable_images] == [big]
    assert any("limit of 40 megapixels" in p and "0001_c3s1_000001_00.png" in p for p in report.problems)
    result = CliRunner().invoke(app, ["data", "check", "--layout", "market1501", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "megapixels" in result.output
