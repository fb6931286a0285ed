"""``check_backbone``: a conformance run of any backbone on tiny synthetic data.

Each check returns a :class:`CheckResult`; a backbone conforms when all pass. Tolerances:
determinism is exact up to ``atol=1e-6`` (same input twice), batch-size invariance compares a
batch of 4 with 4 single-image calls at ``max|a-b| <= batch_tol * max(1, max|a|)`` (default
1e-3: BatchNorm in eval mode and attention are per-sample, so only float reordering differs;
bf16 autocast uses 5e-2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plipbench.errors import PlipbenchError

CAPTIONS = (
    "A man in a black jacket and blue jeans walking with a backpack.",
    "The woman wears a red dress and white shoes.",
    "A young person with short hair, a grey hoodie and dark trousers.",
    "She is carrying a handbag and wearing glasses.",
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


def _run(name: str, fn: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(name, True, fn())
    except AssertionError as err:
        return CheckResult(name, False, str(err) or "assertion failed")
    except Exception as err:  # a conformance run reports every failure instead of stopping at the first
        return CheckResult(name, False, f"{type(err).__name__}: {err}")


def verify_embedding_size(backbone: Any) -> None:
    """Encode one blank image (and one caption, for a text model) and raise :class:`PlipbenchError` unless
    the output is ``(1, metadata.embedding_dim)``. ``eval`` calls it before any task: a protocol that trains
    through the differentiable forward would otherwise meet a wrong size only as a shape error deep in
    its head, and the feature store on the first batch of its first task."""
    import torch

    height, width = backbone.image_transform.size
    backbone.encode_image(torch.zeros(1, 3, height, width))  # Backbone checks (batch, embedding_dim)
    if backbone.has_text:
        backbone.encode_text([CAPTIONS[0]])


def check_backbone(
    backbone: Any, *, seed: int = 0, num_images: int = 4, batch_tol: float | None = None
) -> list[CheckResult]:
    """Run the conformance checks (shapes, dtype, finiteness, determinism, batch invariance, eval mode, text)."""
    import numpy as np
    import torch

    from plipbench.models.backbone import Backbone

    if not isinstance(backbone, Backbone):
        return [CheckResult("is a Backbone", False, f"got {type(backbone).__name__}")]
    tol = batch_tol if batch_tol is not None else (5e-2 if backbone.precision == "bf16" else 1e-3)
    dim = backbone.metadata.embedding_dim
    height, width = backbone.image_transform.size
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(num_images, 3, height, width, generator=gen)
    results: list[CheckResult] = []
    cache: dict[str, torch.Tensor] = {}

    def image_shape() -> str:
        out = cache["image"] = backbone.encode_image(images)
        assert tuple(out.shape) == (num_images, dim), f"expected {(num_images, dim)}, got {tuple(out.shape)}"
        return f"({num_images}, {dim}) for input {tuple(images.shape)}"

    def dtype(key: str) -> Callable[[], str]:
        def check() -> str:
            assert cache[key].dtype == torch.float32, f"expected float32, got {cache[key].dtype}"
            return "float32"

        return check

    def finite(key: str) -> Callable[[], str]:
        def check() -> str:
            bad = int((~torch.isfinite(cache[key])).sum())
            assert bad == 0, f"{bad} non-finite values"
            norm = cache[key].norm(dim=1)
            assert bool((norm > 0).all()), "an embedding is all zeros"
            return f"all finite, norms {float(norm.min()):.3g}..{float(norm.max()):.3g}"

        return check

    def deterministic(key: str, again: Callable[[], torch.Tensor]) -> Callable[[], str]:
        def check() -> str:
            diff = float((again() - cache[key]).abs().max())
            assert diff <= 1e-6, f"same input twice differs by {diff:.3g}"
            return f"max diff {diff:.2g}"

        return check

    def batch_invariant(key: str, singles: Callable[[], torch.Tensor]) -> Callable[[], str]:
        def check() -> str:
            ref = cache[key]
            diff = float((singles() - ref).abs().max())
            bound = tol * max(1.0, float(ref.abs().max()))
            assert diff <= bound, f"batch of {num_images} vs singles differ by {diff:.3g} > {bound:.3g}"
            return f"max diff {diff:.2g} (tolerance {bound:.2g})"

        return check

    def eval_mode() -> str:
        training = [n or "<root>" for n, m in backbone.module.named_modules() if m.training]
        assert not training, f"modules in training mode after encode: {', '.join(training[:5])}"
        return "every module in eval mode"

    def raw_images() -> str:
        rng = np.random.default_rng(seed)
        raw = [
            rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in ((97, 41), (300, 120), (64, 64))
        ]
        out = backbone.encode_images(raw, batch_size=2)
        assert tuple(out.shape) == (3, dim), f"expected (3, {dim}), got {tuple(out.shape)}"
        return "uint8 arrays of 3 sizes preprocessed and encoded"

    def fingerprint() -> str:
        fp = backbone.fingerprint
        backbone._fingerprint = None
        assert backbone.fingerprint == fp and len(fp) == 64, "fingerprint is not stable"
        return fp[:16]

    results.append(_run("image: shape", image_shape))
    if "image" in cache:
        results += [
            _run("image: dtype", dtype("image")),
            _run("image: finite", finite("image")),
            _run("image: deterministic", deterministic("image", lambda: backbone.encode_image(images))),
            _run(
                "image: batch-size invariant",
                batch_invariant(
                    "image",
                    lambda: torch.cat([backbone.encode_image(images[i : i + 1]) for i in range(num_images)]),
                ),
            ),
        ]
    results.append(_run("image: raw images", raw_images))
    results.append(_run("eval mode", eval_mode))
    if backbone.has_text:
        captions = list(CAPTIONS[:num_images])

        def text_shape() -> str:
            out = cache["text"] = backbone.encode_text(captions)
            assert tuple(out.shape) == (len(captions), dim), (
                f"expected {(len(captions), dim)}, got {tuple(out.shape)}"
            )
            return f"({len(captions)}, {dim}), same size as the image embedding"

        results.append(_run("text: shape", text_shape))
        if "text" in cache:
            results += [
                _run("text: dtype", dtype("text")),
                _run("text: finite", finite("text")),
                _run("text: deterministic", deterministic("text", lambda: backbone.encode_text(captions))),
                _run(
                    "text: batch-size invariant",
                    batch_invariant("text", lambda: torch.cat([backbone.encode_text([c]) for c in captions])),
                ),
            ]
    else:

        def no_text() -> str:
            try:
                backbone.encode_text(["a caption"], task="check")
            except PlipbenchError as err:
                return f"encode_text refuses clearly: {err}"
            raise AssertionError("has_text is False but encode_text did not raise PlipbenchError")

        results.append(_run("text: absent, clear error", no_text))
    results.append(_run("fingerprint stable", fingerprint))
    return results
