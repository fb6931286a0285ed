"""Print the zoo table: for every baseline, its parameters, weights source, whether plipbench can fetch it, and
the largest absolute difference between plipbench's loader and the reference architecture.

For each baseline the reference is built as the equality tests build it (``tests/models/test_zoo_*.py``,
``tests/models/test_models_hub.py``), but at the baseline's own size: the architecture from its PyPI package
(timm, transformers, open_clip, torchreid) with seeded random weights, written in the official checkpoint
layout (prefixes, heads, DINO / MoCo / MAE extras, ``argparse.Namespace``), loaded through plipbench by the
baseline's name, and both run on one fixed input in fp32. Nothing is downloaded: ``PLIPBENCH_OFFLINE=1``,
an empty ``PLIPBENCH_WEIGHTS`` and a temporary Hugging Face cache are set before anything is imported; the
hf-clip and open_clip baselines are loaded by hub id / pretrained tag from that cache.

Run from the repository root (a few minutes on a laptop CPU; the CLIP ViT-B/16 files are 600 MB each)::

    PYTHONPATH=. python benchmarks/zoo_table.py [--only NAME ...] [--format table|markdown]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.mkdtemp(prefix="plipbench-zoo-table-"))
os.environ.update({"PLIPBENCH_OFFLINE": "1", "PLIPBENCH_WEIGHTS": str(WORK / "no-weights"),
                   "HF_HUB_CACHE": str(WORK / "hub"), "HF_HOME": str(WORK / "hf")})  # fmt: skip
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))

from plipbench.models import create_backbone, list_baselines  # noqa: E402
from plipbench.models.baselines import BaselineSpec  # noqa: E402
from plipbench.models.fetch import fetch_status  # noqa: E402
from tests.models.zoo_fixtures import batch, dino_args, dino_head, perturb, save  # noqa: E402

CAPTIONS = ["a woman in a red coat carrying a black bag", "a man with a blue shirt and grey trousers"]
Measure = Callable[
    [BaselineSpec, Path], tuple[float, int, str]
]  # (max |diff|, parameters, what was compared)


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()


def _size(spec: BaselineSpec, default: tuple[int, int] = (256, 128)) -> tuple[int, int]:
    return tuple(int(v) for v in spec.args.get("image_size", default))  # type: ignore[return-value]


def lup_resnet(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    import timm

    torch.manual_seed(0)
    ref = timm.create_model(spec.model, pretrained=False, num_classes=0)
    ref.layer4[0].conv2.stride, ref.layer4[0].downsample[0].stride = (1, 1), (1, 1)
    state = perturb(ref).state_dict()
    raw = {f"module.{enc}.{k}": v for enc in ("encoder_q", "encoder_k") for k, v in state.items()}
    heads = ["fc.0", "fc.2"] if spec.name.startswith("lup-moco") else ["embed_fc", "classifier", "fc1", "fc2"]
    for enc in ("encoder_q", "encoder_k"):
        raw |= {f"module.{enc}.{h}.{p}": torch.randn(8, 2048) if p == "weight" else torch.randn(8)
                for h in heads for p in ("weight", "bias")}  # fmt: skip
    raw |= {"module.queue": torch.randn(128, 16), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    if not spec.name.startswith("lup-moco"):
        raw["module.prototypes"] = torch.randn(16, 8)
    path = save({"epoch": 200, "arch": spec.model, "state_dict": raw, "optimizer": {}}, tmp / "raw.pth.tar")
    backbone = create_backbone(spec.name, weights=str(path))
    x = batch(*_size(spec), n=1)
    with torch.no_grad():
        return (
            _diff(backbone.encode_image(x), ref(x)),
            backbone.metadata.num_parameters,
            "GAP of layer4 (raw MoCo/PNL)",
        )


def _timm_vit(width: int, size: tuple[int, int], **kw: Any) -> torch.nn.Module:
    import timm

    name = {384: "vit_small_patch16_224", 768: "vit_base_patch16_224"}[width]
    torch.manual_seed(0)
    return perturb(
        timm.create_model(name, pretrained=False, img_size=size, num_classes=0, global_pool="token", **kw)
    )


def person_vit(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    width = 384 if spec.model and spec.model.startswith("vit-small") else 768
    size, layout = _size(spec), spec.args.get("layout", "dino")
    x = batch(*size, n=1)
    if spec.model and spec.model.endswith("-ics"):
        from tests.models.test_zoo_ics import ics_raw_dino, ics_reference, ics_reference_cls

        vit, stem = ics_reference(width, size)
        backbone = create_backbone(spec.name, weights=str(save(ics_raw_dino(vit, stem), tmp / "ics.pth")))
        return (_diff(backbone.encode_image(x), ics_reference_cls(vit, stem, x)), backbone.metadata.num_parameters,
                "CLS vs functional ICS stem + timm blocks (raw DINO)")  # fmt: skip
    vit = _timm_vit(width, size)
    state = vit.state_dict()
    if layout == "mae":
        decoder = {"mask_token": torch.randn(1, 1, 64), "decoder_embed.weight": torch.randn(64, width),
                   "decoder_pos_embed": torch.randn(1, 129, 64), "decoder_norm.weight": torch.randn(64),
                   "decoder_pred.weight": torch.randn(768, 64)}  # fmt: skip
        obj: dict[str, Any] = {"epoch": 399, "arch": "pose_mae_vit_base_patch16", "model": state | decoder,
                               "optimizer": {}, "scaler": {}}  # fmt: skip
        expected_fn = lambda: vit.forward_features(x)[:, 0]  # noqa: E731
        what = "CLS after norm (MAE snapshot with decoder)"
    elif layout == "pass":
        g = torch.Generator().manual_seed(3)
        parts = [torch.randn(1, 1, width, generator=g) * 0.02 for _ in range(3)]
        prefix = [torch.randn(1, 1, width, generator=g) * 0.02 for _ in range(4)]
        patch_pos = vit.pos_embed.detach()[:, 1:].clone()
        flat = {k: v for k, v in state.items() if k != "pos_embed"} | {"pos_embed": patch_pos}
        flat |= {f"part_token{i + 1}": p for i, p in enumerate(parts)}
        flat |= dict(zip(["cls_pos", "part1_pos", "part2_pos", "part3_pos"], prefix, strict=True))
        obj = {
            "teacher": {f"backbone.{k}": v for k, v in flat.items()} | dino_head(width),
            "args": dino_args(),
        }

        def expected_fn() -> torch.Tensor:
            tokens = torch.cat([vit.cls_token, *parts, vit.patch_embed(x)], dim=1) + torch.cat(
                [*prefix, patch_pos], 1
            )
            tokens = vit.norm(vit.blocks(vit.norm_pre(tokens)))
            return torch.cat([tokens[:, 0], tokens[:, 1:4].mean(dim=1)], dim=1)

        what = "cat(CLS, mean of part tokens) vs PASS token assembly on timm (raw DINO)"
    else:
        obj = {"teacher": {f"backbone.{k}": v for k, v in state.items()} | dino_head(width),
               "student": {}, "epoch": 100, "args": dino_args()}  # fmt: skip
        expected_fn = lambda: vit.forward_features(x)[:, 0]  # noqa: E731
        what = "CLS after norm (raw DINO snapshot)"
    backbone = create_backbone(spec.name, weights=str(save(obj, tmp / "vit.pth")))
    with torch.no_grad():
        return _diff(backbone.encode_image(x), expected_fn()), backbone.metadata.num_parameters, what


def solider(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    from transformers import SwinConfig, SwinModel

    from plipbench.models.zoo.swin import VARIANTS
    from tests.models.test_zoo_solider import hf_reference, hf_to_solider, solider_extras

    embed, depths, heads = VARIANTS[spec.model or ""]
    size = _size(spec)
    torch.manual_seed(0)
    config = SwinConfig(
        embed_dim=embed, depths=list(depths), num_heads=list(heads), window_size=7, image_size=size
    )
    hf = perturb(SwinModel(config, add_pooling_layer=False))
    extra = solider_extras([embed, 2 * embed, 4 * embed, 8 * embed])
    teacher = {f"backbone.{k}": v for k, v in hf_to_solider(hf, extra).items()} | dino_head(8 * embed)
    path = save({"teacher": teacher, "student": {}, "epoch": 100, "args": dino_args()}, tmp / "swin.pth")
    backbone = create_backbone(spec.name, weights=str(path))
    x = batch(*size, n=1)
    pooled, _ = hf_reference(hf, extra, x, float(spec.args.get("semantic_weight", 0.2)))
    return (_diff(backbone.encode_image(x), pooled), backbone.metadata.num_parameters,
            "pooled norm3 vs transformers SwinModel(always_partition) + semantic hooks")  # fmt: skip


def person_clip(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    import open_clip

    from tests.models.test_zoo_person_clip import _heads

    size, layout = _size(spec), spec.args["layout"]
    torch.manual_seed(0)
    ref = perturb(
        open_clip.create_model(spec.model, pretrained=None, force_quick_gelu=True, force_image_size=size)
    )
    state = ref.state_dict()
    x = batch(*size, n=1)
    if layout == "clip-reid":
        flat = {
            f"image_encoder.{k[len('visual.') :]}": v for k, v in state.items() if k.startswith("visual.")
        }
        extra = {"prompt_learner.cls_ctx": torch.randn(11, 4, 512), "classifier.weight": torch.randn(11, 768),
                 "bottleneck.weight": torch.randn(768), "text_encoder.ln_final.weight": torch.randn(512)}  # fmt: skip
        backbone = create_backbone(spec.name, weights=str(save(flat | extra, tmp / "clip_reid.pth")))
        with torch.no_grad():
            projected = ref.encode_image(x)
            ref.visual.proj, proj = None, ref.visual.proj
            expected = torch.cat([ref.visual(x), projected], dim=1)
            ref.visual.proj = proj
            return (_diff(backbone.encode_image(x), expected), backbone.metadata.num_parameters,
                    "cat(ln_post(CLS), CLS @ proj) vs open_clip (flat CLIP-ReID dict)")  # fmt: skip
    if layout == "irra":
        model = {f"base_model.{k}": v for k, v in state.items()} | _heads(768)
    else:
        text = ("transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection")
        model = {(f"encode_text.{k}" if k.startswith(text) else k): v for k, v in state.items()} | _heads(768)
    obj = {"model": model, "optimizer": {}, "config": {"model": {"name": "clip_vitb"}}}
    backbone = create_backbone(spec.name, weights=str(save(obj, tmp / "best.pth")))
    tokens = open_clip.get_tokenizer(spec.model)(CAPTIONS)
    with torch.no_grad():
        image = _diff(backbone.encode_image(x), ref.encode_image(x))
        text_diff = _diff(backbone.encode_text(CAPTIONS), ref.encode_text(tokens))
    return max(image, text_diff), backbone.metadata.num_parameters, "image and text embeddings vs open_clip"


def hf_clip(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    """CLIP ViT-B/16's configuration, random, in the hub cache under the baseline's hub id, loaded offline by name."""
    from huggingface_hub import constants
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    from plipbench.models.plip.tokenizer import PEDESTRIAN_SENTENCES, train_tokenizer_dir
    from tests.models.hub_fixtures import directory_files, put_in_hub_cache

    tok = AutoTokenizer.from_pretrained(str(train_tokenizer_dir(PEDESTRIAN_SENTENCES, tmp / "tokenizer")))
    text = {
        "eos_token_id": tok.sep_token_id,
        "bos_token_id": tok.cls_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config = CLIPConfig(
        text_config=text, vision_config={"patch_size": 16, "image_size": 224}, projection_dim=512
    )
    torch.manual_seed(0)
    directory = tmp / "clip"
    perturb(CLIPModel(config)).save_pretrained(str(directory))
    tok.save_pretrained(str(directory))
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
        directory
    )
    put_in_hub_cache(Path(constants.HF_HUB_CACHE), spec.model or "", directory_files(directory))
    backbone = create_backbone(spec.name)  # no local directory: the hub id, from the cache
    ref = CLIPModel.from_pretrained(str(directory)).eval()
    x = batch(224, 224, n=1)
    enc = tok(CAPTIONS, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    pooled = lambda out: out if isinstance(out, torch.Tensor) else out.pooler_output  # noqa: E731
    with torch.no_grad():
        image = _diff(backbone.encode_image(x), pooled(ref.get_image_features(pixel_values=x)))
        txt = _diff(backbone.encode_text(CAPTIONS), pooled(ref.get_text_features(**{k: enc[k] for k in
                                                                                   ("input_ids", "attention_mask")})))  # fmt: skip
    return (
        max(image, txt),
        backbone.metadata.num_parameters,
        "image and text vs CLIPModel (hub cache, offline)",
    )


def open_clip_tag(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    """The tag's random weights in the hub cache where open_clip looks for them, loaded offline by tag."""
    import open_clip
    from huggingface_hub import constants
    from safetensors.torch import save as save_safetensors

    from plipbench.models.adapters.open_clip_models import _tag_weights, parse_open_clip_spec
    from tests.models.hub_fixtures import put_in_hub_cache

    name, tag = parse_open_clip_spec(spec.model or "", None)
    repo, _, files = _tag_weights(open_clip, spec.name, name, tag or "")
    torch.manual_seed(0)
    ref = perturb(open_clip.create_model(name, pretrained=None))
    data = save_safetensors({k: v.contiguous() for k, v in ref.state_dict().items()})
    put_in_hub_cache(Path(constants.HF_HUB_CACHE), repo or "", {files[0]: data})
    backbone = create_backbone(spec.name)
    x = batch(224, 224, n=1)
    with torch.no_grad():
        image = _diff(backbone.encode_image(x), ref.encode_image(x))
        text = _diff(backbone.encode_text(CAPTIONS), ref.encode_text(open_clip.get_tokenizer(name)(CAPTIONS)))
    return (
        max(image, text),
        backbone.metadata.num_parameters,
        f"image and text vs open_clip (tag {tag}, hub cache)",
    )


def timm_file(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    ref = perturb(timm.create_model(spec.model, pretrained=False))
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp / "model.safetensors"))
    backbone = create_backbone(spec.name, weights=str(tmp / "model.safetensors"))
    ref.reset_classifier(0)
    x = batch(224, 224, n=1)
    with torch.no_grad():
        return (
            _diff(backbone.encode_image(x), ref(x)),
            backbone.metadata.num_parameters,
            "pooled features (head skipped)",
        )


def torchreid_file(spec: BaselineSpec, tmp: Path) -> tuple[float, int, str]:
    from plipbench.models.adapters.torchreid_models import build_torchreid

    torch.manual_seed(0)
    ref = perturb(build_torchreid(spec.model, pretrained=False).module)
    state = {f"module.{k}": v for k, v in ref.state_dict().items()}
    state |= {"module.classifier.weight": torch.randn(1000, 512), "module.classifier.bias": torch.zeros(1000)}
    backbone = create_backbone(spec.name, weights=str(save({"state_dict": state}, tmp / "osnet.pth")))
    x = batch(256, 128, n=1)
    with torch.no_grad():
        return (
            _diff(backbone.encode_image(x), ref(x)),
            backbone.metadata.num_parameters,
            "features vs torchreid",
        )


def measure_for(spec: BaselineSpec) -> tuple[Measure | None, str]:
    """The comparison for a baseline, or None and why there is none."""
    status = fetch_status(spec)
    if status == "unsupported":
        return None, "no loader"
    if status == "gated":
        return None, "no loader (gated)"
    if spec.weights is None:
        return None, "n/a (random init)"
    by_family: dict[str, Measure] = {"lup-resnet": lup_resnet, "person-vit": person_vit, "solider": solider,
                                     "person-clip": person_clip, "hf-clip": hf_clip, "open_clip": open_clip_tag,
                                     "timm": timm_file, "torchreid": torchreid_file}  # fmt: skip
    if spec.family in by_family:
        return by_family[spec.family], ""
    return None, "n/a (plipbench's own PLIP; no PyPI reference)" if spec.family == "plip" else "n/a"


def source_of(spec: BaselineSpec) -> str:
    if spec.weights is None:
        return "-"
    fetch = spec.weights.fetch
    if fetch is None:
        if not spec.weights.required:
            return f"{spec.family} library cache ({spec.model})"
        return "by hand: " + spec.weights.url.split(" ")[0]
    if fetch.kind == "hf":
        return f"hf {fetch.repo}@{(fetch.revision or '')[:7]}"
    if fetch.kind == "gdrive":
        return f"gdrive {fetch.id}"
    if fetch.kind in ("gated", "unsupported"):
        return f"{fetch.kind}: " + spec.weights.url.split(" ")[0]
    return f"url {fetch.url}"


FETCHABLE = {"fetchable": "yes", "library": "yes", "present": "yes", "gated": "gated", "manual": "no",
             "unsupported": "no", "none": "-"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="baseline names to measure (default: all)")
    parser.add_argument("--format", choices=["table", "markdown"], default="markdown")
    args = parser.parse_args(argv)
    rows = []
    for spec, path, error in list_baselines():
        if spec is None:
            rows.append((path.stem, "?", "invalid YAML", "no", error or "", ""))
            continue
        if args.only and spec.name not in args.only:
            continue
        measure, why = measure_for(spec)
        params, diff, what = spec.parameters, why, ""
        if measure is not None:
            tmp = Path(tempfile.mkdtemp(dir=WORK))
            started = time.perf_counter()
            try:
                value, params, what = measure(spec, tmp)
                diff = f"{value:.2e}"
                what += f" [{time.perf_counter() - started:.0f}s]"
            except Exception as err:  # a failure is a row of the table, not the end of it
                diff, what = "FAILED", f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        count = "?" if params is None else f"{params / 1e6:.1f}M"
        rows.append((spec.name, count, source_of(spec), FETCHABLE[fetch_status(spec)], diff, what))
        print(f"measured {spec.name}: {diff}", file=sys.stderr, flush=True)
    header = ("model", "parameters", "source", "fetchable", "max |diff|", "compared")
    if args.format == "markdown":
        print("| " + " | ".join(h.replace("|", "\\|") for h in header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    shutil.rmtree(WORK, ignore_errors=True)
    return 1 if any(r[4] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
