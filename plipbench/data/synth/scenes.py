"""Backgrounds and camera looks: what a camera adds around and on top of a person.

A :class:`CameraLook` is fixed per camera (image ReID presets) or per image (text presets): its
scene type, base colours, brightness, colour cast, blur and sensor noise. Per-image jitter is
drawn on top of it in :func:`plipbench.data.synth.render.render_person`, so images of one camera
share a look (like a real fixed camera) while no two images are identical.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from plipbench.data.synth.canvas import Canvas
from plipbench.data.synth.vocab import SCENES


@dataclass(frozen=True)
class CameraLook:
    scene: str
    palette: tuple[tuple[int, int, int], ...]  # 4 base colours of the scene
    horizon: float  # fraction of the height where the ground starts
    brightness: float
    cast: tuple[float, float, float]  # per-channel gain (colour cast)
    blur: float  # maximum Gaussian blur radius, in pixels at 64 px width
    noise: float  # maximum noise standard deviation, in grey levels
    occlusion: float  # probability of a partial occluder


_BASE_PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "street": ((150, 145, 140), (90, 90, 95), (70, 80, 100), (180, 170, 150)),
    "park": ((170, 205, 235), (70, 140, 60), (40, 90, 40), (120, 110, 80)),
    "indoor": ((220, 210, 190), (160, 130, 100), (120, 100, 80), (240, 240, 230)),
    "campus": ((165, 80, 60), (175, 170, 160), (110, 50, 40), (200, 200, 195)),
    "plaza": ((190, 210, 230), (200, 195, 185), (150, 145, 140), (230, 225, 215)),
    "night": ((25, 30, 55), (45, 45, 50), (250, 210, 120), (70, 70, 80)),
    "station": ((185, 190, 195), (130, 135, 140), (230, 200, 40), (90, 95, 100)),
}


def sample_look(
    rng: np.random.Generator, scenes: tuple[str, ...] = SCENES, *, harsh: float = 1.0
) -> CameraLook:
    """Draw a camera look from ``scenes``; ``harsh`` scales how strong lighting/blur/noise can be."""
    scene = scenes[int(rng.integers(len(scenes)))]
    jitter = rng.integers(-25, 26, size=(4, 3))
    palette = tuple(
        tuple(int(v) for v in np.clip(np.add(c, j), 0, 255))
        for c, j in zip(_BASE_PALETTES[scene], jitter, strict=True)
    )
    brightness = float(rng.uniform(0.75, 1.15)) if scene != "night" else float(rng.uniform(0.6, 0.8))
    cast = tuple(float(v) for v in 1.0 + rng.uniform(-0.08, 0.08, size=3) * harsh)
    return CameraLook(
        scene=scene,
        palette=palette,  # type: ignore[arg-type]
        horizon=float(rng.uniform(0.55, 0.8)),
        brightness=brightness,
        cast=cast,  # type: ignore[arg-type]
        blur=float(rng.uniform(0.3, 1.2) * harsh),
        noise=float(rng.uniform(2.0, 7.0) * harsh),
        occlusion=float(rng.uniform(0.05, 0.2) * harsh),
    )


def render_background(look: CameraLook, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A float32 (h, w, 3) background: wall or sky above the horizon, ground below, scene details."""
    p = [np.asarray(c, dtype=np.float32) for c in look.palette]
    img = np.empty((h, w, 3), dtype=np.float32)
    hz = int(h * np.clip(look.horizon + rng.uniform(-0.05, 0.05), 0.4, 0.9))
    img[:hz] = p[0]
    img[hz:] = p[1]
    # vertical light gradient: a cheap cue for depth, different per image
    grad = np.linspace(1.0 + rng.uniform(-0.1, 0.1), 1.0 + rng.uniform(-0.1, 0.1), h, dtype=np.float32)
    img *= grad[:, None, None]
    off = int(rng.integers(0, max(2, w // 2)))
    s = look.scene
    if s == "street":  # building facade with windows, kerb line
        step = max(6, w // 5)
        for x in range((off % step) - step, w, step):
            for y in range(2, max(3, hz - step // 2), step + 2):
                img[y : y + step // 2, max(0, x) : max(0, x + step // 2)] = p[2]
        img[hz : hz + max(1, h // 60)] = p[3]
    elif s == "park":  # tree crowns on the horizon, path
        for x in range(-(off % 24), w + 12, 24):
            cy, r = hz - h // 12, max(4, w // 6)
            yy, xx = np.ogrid[max(0, cy - r) : cy + r, 0:w]
            m = (xx - x) ** 2 + (yy - cy) ** 2 <= r * r
            img[max(0, cy - r) : cy + r][m] = p[2]
        img[int(h * 0.85) :, w // 5 : 4 * w // 5] = p[3]
    elif s == "indoor":  # door and skirting board
        x0 = off % max(1, w - w // 3)
        img[hz // 4 : hz, x0 : x0 + w // 3] = p[2]
        img[hz - max(1, h // 50) : hz] = p[3] * 0.8
    elif s == "campus":  # bricks
        img[: hz : max(3, h // 32)] = p[3]
        img[hz :: max(4, h // 16)] = p[2] * 1.2
    elif s == "plaza":  # paving joints
        img[hz :: max(4, h // 14)] = p[2]
        img[hz:, off % 12 :: 12] = p[2]
    elif s == "night":  # street lamp glow and lit windows
        cx = off % w
        yy, xx = np.ogrid[0:h, 0:w]
        glow = np.exp(-((xx - cx) ** 2 + (yy - hz * 0.3) ** 2) / (2 * (w * 0.3) ** 2)).astype(np.float32)
        img += glow[..., None] * p[2] * 0.5
    elif s == "station":  # pillars and the yellow platform line
        x0 = off % w
        img[:hz, x0 : x0 + max(3, w // 8)] = p[3]
        img[hz + (h - hz) // 3 : hz + (h - hz) // 3 + max(1, h // 64)] = p[2]
    return img


# Occluder sizes (fractions of the image): the everyday ones every camera look may add, and the heavy ones of an
# occluded-ReID query (Occluded-Duke style), which hide about half the person
OCCLUDERS = {"low_top": (0.7, 0.85), "pole_x": (0.05, 0.75), "pole_w": (0.08, 0.16), "walker_rx": (0.15, 0.25)}
HEAVY_OCCLUDERS = {"low_top": (0.4, 0.55), "pole_x": (0.15, 0.5), "pole_w": (0.3, 0.45), "walker_rx": (0.4, 0.55)}


def draw_occluder(img: np.ndarray, rng: np.random.Generator, cv: Canvas, sizes: dict = OCCLUDERS) -> None:
    """One partial occluder in front of the person (in place); occluders are background in the part labels."""
    h, w = img.shape[:2]
    kind = int(rng.integers(3))
    col = rng.integers(30, 220, size=3).astype(np.float32)
    if kind == 0:  # something low in front (bench, car, railing): bottom 15-30 % (heavy: 45-60 %)
        region = (slice(int(h * rng.uniform(*sizes["low_top"])), None), slice(None))
        img[region] = col
        cv.clear_labels(region)
    elif kind == 1:  # a pole (heavy: a pillar or a sign)
        x0 = int(rng.uniform(*sizes["pole_x"]) * w)
        region = (slice(None), slice(x0, x0 + max(2, int(w * rng.uniform(*sizes["pole_w"])))))
        img[region] = col
        cv.clear_labels(region)
    else:  # a passer-by cut by the frame edge
        x = 0.0 if rng.random() < 0.5 else float(w)
        cv.label = (0, 0)
        cv.ellipse(x, h * 0.55, w * rng.uniform(*sizes["walker_rx"]), h * 0.45, col)


def camera_effects(img: np.ndarray, look: CameraLook, rng: np.random.Generator, cv: Canvas,
                   heavy_occluder: bool = False) -> None:
    """Occlusion, lighting and colour cast, blur and sensor noise (in place).

    ``heavy_occluder=True`` always draws an occluder, of the heavy sizes (:data:`HEAVY_OCCLUDERS`).
    """
    h, w = img.shape[:2]
    if rng.random() < look.occlusion or heavy_occluder:
        draw_occluder(img, rng, cv, HEAVY_OCCLUDERS if heavy_occluder else OCCLUDERS)
    gain = look.brightness * float(rng.uniform(0.9, 1.1)) * np.asarray(look.cast, dtype=np.float32)
    img *= gain
    radius = float(rng.uniform(0.0, look.blur)) * w / 64
    if radius > 0.25:
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius))
        img[...] = np.asarray(pil, dtype=np.float32)
    sigma = float(rng.uniform(0.0, look.noise))
    if sigma > 0.5:  # a random window of a fixed noise bank: per-image noise at the cost of a slice
        bank = _noise_bank(h, w)
        oy, ox = int(rng.integers(h)), int(rng.integers(w))
        img += bank[oy : oy + h, ox : ox + w] * np.float32(sigma)


@functools.lru_cache(maxsize=8)
def _noise_bank(h: int, w: int) -> np.ndarray:
    """Standard normal noise of shape (2h, 2w, 3), the same in every process (fixed seed)."""
    rng = np.random.Generator(np.random.Philox(key=h * 100003 + w))
    return rng.standard_normal((2 * h, 2 * w, 3), dtype=np.float32)
