"""Vectorised drawing primitives for the synthetic pedestrians (numpy, bounding-box limited).

Every primitive evaluates its mask only inside its own bounding box, so drawing a person with a
few dozen primitives costs well under a millisecond at 128x64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray] | np.ndarray


Label = tuple[int, int] | Callable[[np.ndarray, np.ndarray], np.ndarray] | None


class Canvas:
    """Paint primitives on a float32 (H, W, 3) image; every primitive works inside its bounding box.

    With ``labels`` (an (H, W, 2) uint8 array), every primitive also paints :attr:`label` where it paints
    colour: a (LIP, PASCAL) pair, a callable of the pixel centres giving an (h, w, 2) array (a garment that
    spans two body parts), or None to keep the labels under it (a decoration). Labels never change the image.
    """

    def __init__(self, img: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.img = img
        self.h, self.w = img.shape[:2]
        self.labels = labels
        self.label: Label = None

    def _grid(self, x0: float, y0: float, x1: float, y1: float):
        ix0, iy0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
        ix1, iy1 = min(self.w, int(math.ceil(x1)) + 1), min(self.h, int(math.ceil(y1)) + 1)
        if ix0 >= ix1 or iy0 >= iy1:
            return None
        yy = np.arange(iy0, iy1, dtype=np.float32)[:, None] + 0.5
        xx = np.arange(ix0, ix1, dtype=np.float32)[None, :] + 0.5
        return (slice(iy0, iy1), slice(ix0, ix1)), yy, xx

    def _paint(self, sl, yy, xx, mask, fill: Fill) -> None:
        sub = self.img[sl]
        if callable(fill):
            sub[mask] = fill(np.broadcast_to(yy, mask.shape), np.broadcast_to(xx, mask.shape))[mask]
        else:
            sub[mask] = fill
        if self.labels is not None and self.label is not None:
            target = self.labels[sl]
            if callable(self.label):
                target[mask] = self.label(np.broadcast_to(yy, mask.shape), np.broadcast_to(xx, mask.shape))[mask]
            else:
                target[mask] = self.label

    def clear_labels(self, sl) -> None:
        """Background labels over a region painted directly on :attr:`img` (an occluder)."""
        if self.labels is not None:
            self.labels[sl] = 0

    def ellipse(self, cx, cy, rx, ry, fill: Fill, *, ymin=-1e9, ymax=1e9) -> None:
        g = self._grid(cx - rx, max(cy - ry, ymin), cx + rx, min(cy + ry, ymax))
        if g is not None:
            sl, yy, xx = g
            m = ((xx - cx) / max(rx, 0.5)) ** 2 + ((yy - cy) / max(ry, 0.5)) ** 2 <= 1.0
            m &= (yy >= ymin) & (yy <= ymax)
            self._paint(sl, yy, xx, m, fill)

    def poly(self, pts: list[tuple[float, float]], fill: Fill) -> None:
        """A convex polygon given in either winding order."""
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        g = self._grid(min(xs), min(ys), max(xs), max(ys))
        if g is None:
            return
        sl, yy, xx = g
        sign = 0.0
        for i in range(len(pts)):
            (ax, ay), (bx, by) = pts[i], pts[(i + 1) % len(pts)]
            sign += (bx - ax) * (by + ay)
        m = np.ones((yy.shape[0], xx.shape[1]), dtype=bool)
        for i in range(len(pts)):
            (ax, ay), (bx, by) = pts[i], pts[(i + 1) % len(pts)]
            cross = (bx - ax) * (yy - ay) - (by - ay) * (xx - ax)
            m &= cross <= 0 if sign > 0 else cross >= 0
        self._paint(sl, yy, xx, m, fill)

    def rect(self, x0, y0, x1, y1, fill: Fill) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], fill)

    def trapezoid(self, y0, y1, x0a, x1a, x0b, x1b, fill: Fill) -> None:
        """Top edge x0a..x1a at y0, bottom edge x0b..x1b at y1."""
        self.poly([(x0a, y0), (x1a, y0), (x1b, y1), (x0b, y1)], fill)

    def limb(self, x0, y0, x1, y1, r0, r1, fill: Fill) -> None:
        """A segment with radius tapering from r0 to r1 (arms, legs, straps)."""
        r = max(r0, r1)
        g = self._grid(min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
        if g is None:
            return
        sl, yy, xx = g
        dx, dy = x1 - x0, y1 - y0
        t = ((xx - x0) * dx + (yy - y0) * dy) * (1.0 / max(dx * dx + dy * dy, 1e-6))
        t = np.minimum(np.maximum(t, 0.0, out=t), 1.0, out=t)
        d2 = (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2
        rad = r0 + (r1 - r0) * t
        self._paint(sl, yy, xx, d2 <= rad * rad, fill)


def garment_pattern(kind: str, c1: np.ndarray, c2: np.ndarray, u: float, x0: float, y0: float) -> Fill:
    """A fill for a garment pattern; coordinates are relative to the garment so it moves with it."""
    period = max(2.0, 0.045 * u)
    if kind == "stripes":  # horizontal stripes (PA-100K UpperStride)
        return lambda yy, xx: np.where((((yy - y0) / period).astype(np.int32) % 2 == 0)[..., None], c1, c2)
    if kind == "plaid":
        cell, line = 2.6 * period, max(1.0, 0.45 * period)  # thin lines: the base colour dominates

        def plaid(yy, xx):
            a = (yy - y0) % cell < line
            b = (xx - x0) % cell < line
            return np.where((a & b)[..., None], c2 * 0.6, np.where((a | b)[..., None], c2, c1))

        return plaid
    if kind == "splice":  # two colour blocks, upper and lower half of the top
        return lambda yy, xx: np.where((yy - y0 < 0.17 * u)[..., None], c2, c1)
    if kind == "pattern":  # small checks on the lower garment (LowerPattern)
        p = max(2.0, 0.03 * u)
        return lambda yy, xx: np.where(
            ((((yy - y0) / p).astype(np.int32) + ((xx - x0) / p).astype(np.int32)) % 2 == 0)[..., None],
            c1,
            c2,
        )
    return c1
