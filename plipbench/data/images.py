"""The one place plipbench decodes an image file: :func:`open_rgb`, with a pixel limit against decompression bombs.

A PNG of a few hundred kilobytes can declare 30000 x 30000 pixels and cost gigabytes to decode. Every
reader, the feature extractor, the pre-training data and the protocols decode through
:func:`open_rgb`, which reads the header first and refuses an image above :data:`MAX_PIXELS` before
any pixel is decoded.

The limit, 40 megapixels (e.g. 8000 x 5000), is far above any person crop (Market-1501 is 128 x 64,
PA-100K and the text-ReID sets a few hundred pixels a side) and leaves room for the full scene frames
a person-search task may decode (a 4K frame is 8.3 megapixels, a 6K one about 20). It is lower than
PIL's own warning threshold (about 89 megapixels), so PIL's ``DecompressionBombWarning`` only ever
fires for an image plipbench refuses anyway: this module turns that warning into an error
(``warnings.filterwarnings``) so that it never reaches stderr, and turns it, PIL's
``DecompressionBombError`` (which is not an ``OSError``) and every decoding error into one
:class:`~plipbench.errors.DataError` naming the file.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plipbench.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

MAX_PIXELS = 40_000_000


def _pil():
    from PIL import Image

    # Re-installed when missing (``warnings.catch_warnings`` in a caller, or pytest, resets the filters).
    # Only cosmetic: the size check in open_rgb refuses these images whatever the filters say.
    if ("error", None, Image.DecompressionBombWarning, None, 0) not in warnings.filters:
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    return Image


def size_problem(width: int, height: int, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why an image of ``width`` x ``height`` is refused (above ``max_pixels``), else ``None``."""
    if width * height > max_pixels:
        return (f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels, above plipbench's limit of "
                f"{max_pixels / 1e6:g} megapixels (a decompression bomb?)")
    return None


@contextlib.contextmanager
def _opened(path: str | Path, max_pixels: int, what: str) -> Iterator[PILImage.Image]:
    """``Image.open(path)`` with the pixel limit checked from the header and every decoding error (and PIL's
    decompression-bomb error or warning) turned into one :class:`~plipbench.errors.DataError` naming ``path``."""
    Image = _pil()
    try:
        with Image.open(path) as img:
            too_big = size_problem(img.width, img.height, max_pixels)
            if too_big:
                raise DataError(path, too_big)
            if img.width < 1 or img.height < 1:
                raise DataError(path, "empty image (0 pixels)")
            yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(path, f"image above plipbench's limit of {max_pixels / 1e6:g} megapixels, refused as a "
                              f"decompression bomb (PIL: {err})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        # PIL raises OSError (truncated, unidentified), ValueError ("Decompressed data too large" for a
        # PNG text-chunk bomb), SyntaxError or EOFError for broken files.
        raise DataError(path, f"cannot decode {what} ({type(err).__name__}: {err})") from None


def open_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> PILImage.Image:
    """The image at ``path`` fully decoded as an RGB ``PIL.Image``.

    Raises :class:`~plipbench.errors.DataError` naming ``path`` when the file is missing, is not an
    image PIL can decode, is truncated, or has more than ``max_pixels`` pixels (checked from the header,
    before decoding).
    """
    with _opened(path, max_pixels, "image") as img:
        return img.convert("RGB")


def open_label_map(path: str | Path, max_pixels: int = MAX_PIXELS) -> Any:
    """The label map at ``path`` (a parsing annotation: an 8-bit single-channel or palette PNG of class ids)
    as an (H, W) uint8 array; a palette image gives its indices, as PIL reads LIP's maps. Same refusals as
    :func:`open_rgb`, and a :class:`~plipbench.errors.DataError` for a map that is not 8-bit single-channel."""
    import numpy as np

    with _opened(path, max_pixels, "label map") as img:
        if img.mode not in ("L", "P"):
            raise DataError(path, f"label map of mode {img.mode}; expected an 8-bit single-channel (L) or "
                                  f"palette (P) PNG of class ids")
        return np.asarray(img, dtype=np.uint8)
