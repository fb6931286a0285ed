"""SOLIDER Swin: the loader equals transformers' SwinModel (always_partition=True, pads then rolls like mmdet)
with the semantic controller applied by hooks, on SOLIDER-format files converted from random HF weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import SwinConfig, SwinModel

from plipbench.errors import PlipbenchError
from plipbench.models import create_backbone
from plipbench.models.checks import check_backbone
from tests.models.zoo_fixtures import batch, dino_args, dino_head, perturb, save

ATOL = 1e-5
TINY = {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24]}


def mmdet_relative_index(window: int = 7) -> torch.Tensor:
    """mmdet's WindowMSA index (double_step_seq, then flip), written as mmdet writes it."""
    seq = (torch.arange(0, (2 * window - 1) * window, 2 * window - 1)[:, None] + torch.arange(window)[None]).reshape(1, -1)
    return (seq + seq.T).flip(1).contiguous()


def to_unfold_order(weight: torch.Tensor) -> torch.Tensor:
    """Official (HF/timm) 2x2 merge order -> nn.Unfold order, as SOLIDER's mmdet Swin stores it."""
    if weight.ndim == 2:
        out, four_c = weight.shape
        return weight.reshape(out, 4, four_c // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out, four_c)
    return weight.reshape(4, -1)[[0, 2, 1, 3]].transpose(0, 1).reshape(-1)


def hf_to_solider(hf: SwinModel, extra: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename HF parameters to SOLIDER's by pattern (q/k/v concatenated into qkv, merge reordered)."""
    src = hf.state_dict()
    out: dict[str, torch.Tensor] = {
        "patch_embed.projection.weight": src["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.projection.bias": src["embeddings.patch_embeddings.projection.bias"],
        "patch_embed.norm.weight": src["embeddings.norm.weight"], "patch_embed.norm.bias": src["embeddings.norm.bias"],
        "norm3.weight": src["layernorm.weight"], "norm3.bias": src["layernorm.bias"],
    }  # fmt: skip
    for i, layer in enumerate(hf.encoder.layers):
        for j, _ in enumerate(layer.blocks):
            a, b = f"encoder.layers.{i}.blocks.{j}.", f"stages.{i}.blocks.{j}."
            for p in ("weight", "bias"):
                out[f"{b}norm1.{p}"] = src[f"{a}layernorm_before.{p}"]
                out[f"{b}norm2.{p}"] = src[f"{a}layernorm_after.{p}"]
                out[f"{b}attn.w_msa.qkv.{p}"] = torch.cat([src[f"{a}attention.{n}_proj.{p}"] for n in "qkv"])
                out[f"{b}attn.w_msa.proj.{p}"] = src[f"{a}attention.o_proj.{p}"]
                out[f"{b}ffn.layers.0.0.{p}"] = src[f"{a}mlp.fc1.{p}"]
                out[f"{b}ffn.layers.1.{p}"] = src[f"{a}mlp.fc2.{p}"]
            table = src[f"{a}attention.relative_position_bias.relative_position_bias_table"]
            out[f"{b}attn.w_msa.relative_position_bias_table"] = table
            out[f"{b}attn.w_msa.relative_position_index"] = mmdet_relative_index()
        if layer.downsample is not None:
            for p in ("reduction.weight", "norm.weight", "norm.bias"):
                out[f"stages.{i}.downsample.{p}"] = to_unfold_order(src[f"encoder.layers.{i}.downsample.{p}"])
    return out | extra


def solider_extras(dims: list[int], seed: int = 5) -> dict[str, torch.Tensor]:
    """norm0-2 and the semantic controller, which HF's Swin does not have."""
    g = torch.Generator().manual_seed(seed)
    extra = {}
    for i in range(3):
        extra[f"norm{i}.weight"] = 1 + 0.1 * torch.randn(dims[i], generator=g)
        extra[f"norm{i}.bias"] = 0.1 * torch.randn(dims[i], generator=g)
    for i in range(4):
        d = dims[min(i + 1, 3)]
        for kind in ("w", "b"):
            extra[f"semantic_embed_{kind}.{i}.weight"] = 0.3 * torch.randn(d, 2, generator=g)
            extra[f"semantic_embed_{kind}.{i}.bias"] = 0.3 * torch.randn(d, generator=g)
    return extra


def hf_reference(hf: SwinModel, extra: dict, x: torch.Tensor, semantic_weight: float) -> tuple[torch.Tensor, list]:
    """SOLIDER's forward on HF modules: encoder(always_partition=True) + hooks on each downsample."""
    s = torch.tensor([[semantic_weight, 1 - semantic_weight]]).expand(x.shape[0], 2)
    hooks = []
    for i in range(3):
        def modulate(module, args, output, i=i):
            scale = F.softplus(F.linear(s, extra[f"semantic_embed_w.{i}.weight"], extra[f"semantic_embed_w.{i}.bias"]))
            shift = F.linear(s, extra[f"semantic_embed_b.{i}.weight"], extra[f"semantic_embed_b.{i}.bias"])
            return output * scale[:, None] + shift[:, None]

        hooks.append(hf.encoder.layers[i].downsample.register_forward_hook(modulate))
    try:
        with torch.no_grad():
            emb, dims = hf.embeddings(x)
            enc = hf.encoder(emb, dims, always_partition=True, output_hidden_states=True,
                             output_hidden_states_before_downsampling=True)  # fmt: skip
    finally:
        for h in hooks:
            h.remove()
    stages = [t.flatten(2).transpose(1, 2) for t in enc.reshaped_hidden_states[1:]]
    outs = [F.layer_norm(t, t.shape[-1:], extra[f"norm{i}.weight"], extra[f"norm{i}.bias"]) for i, t in enumerate(stages[:3])]
    outs.append(hf.layernorm(stages[3]))
    return outs[3].mean(dim=1), outs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[SwinModel, dict, Path]:
    torch.manual_seed(0)
    hf = perturb(SwinModel(SwinConfig(window_size=7, image_size=(256, 128), **TINY), add_pooling_layer=False))
    extra = solider_extras([96, 192, 384, 768])
    teacher = {f"backbone.{k}": v for k, v in hf_to_solider(hf, extra).items()} | dino_head(768)
    obj = {"teacher": teacher, "student": {}, "optimizer": {}, "epoch": 100, "args": dino_args(),
           "dino_loss": {"center": torch.zeros(1, 32)}}  # fmt: skip
    return hf, extra, save(obj, tmp_path_factory.mktemp("solider") / "swin_tiny.pth")


@pytest.mark.parametrize("size", [(256, 128), (384, 128)])
def test_solider_equals_hf_swin_with_semantic_hooks(tiny, size) -> None:
    hf, extra, path = tiny
    backbone = create_backbone("solider:swin-tiny", weights=str(path), semantic_weight=0.2, image_size=size)
    x = batch(*size)
    pooled, outs = hf_reference(hf, extra, x, 0.2)
    assert (backbone.encode_image(x) - pooled).abs().max().item() < ATOL
    with torch.no_grad():
        mine = backbone.module.stage_outputs(x)
    for i in range(4):
        assert (mine[i] - outs[i]).abs().max().item() < ATOL, i
    expected_drops = sorted(dino_head(768)) + sorted(
        f"stages.{i}.blocks.{j}.attn.w_msa.relative_position_index" for i, d in enumerate(TINY["depths"]) for j in range(d)
    )
    assert backbone.dropped_keys == sorted(expected_drops)


def test_identity_controller_is_plain_swin_and_embed_3_is_dead(tiny, tmp_path: Path) -> None:
    hf, extra, _ = tiny
    identity = dict(extra)
    for i in range(4):  # softplus(0 + log(e - 1)) = 1 and a zero shift
        identity[f"semantic_embed_w.{i}.weight"] = torch.zeros_like(extra[f"semantic_embed_w.{i}.weight"])
        identity[f"semantic_embed_w.{i}.bias"] = torch.full_like(extra[f"semantic_embed_w.{i}.bias"], 0.5413248546129181)
        identity[f"semantic_embed_b.{i}.weight"] = torch.zeros_like(extra[f"semantic_embed_b.{i}.weight"])
        identity[f"semantic_embed_b.{i}.bias"] = torch.zeros_like(extra[f"semantic_embed_b.{i}.bias"])
    path = save(hf_to_solider(hf, identity), tmp_path / "converted_tea.pth")
    backbone = create_backbone("solider:swin-tiny", weights=str(path), semantic_weight=0.7)
    x = batch()
    with torch.no_grad():
        emb, dims = hf.embeddings(x)
        plain = hf.layernorm(hf.encoder(emb, dims, always_partition=True).last_hidden_state).mean(dim=1)
    assert (backbone.encode_image(x) - plain).abs().max().item() < ATOL
    changed = hf_to_solider(hf, identity) | {"semantic_embed_w.3.weight": torch.randn(768, 2),
                                              "semantic_embed_b.3.bias": torch.randn(768)}  # fmt: skip
    other = create_backbone("solider:swin-tiny", weights=str(save(changed, tmp_path / "dead.pth")), semantic_weight=0.7)
    assert torch.equal(other.encode_image(x), backbone.encode_image(x))


def test_no_controller_drops_its_keys_and_wrong_variant_is_named(tiny, tmp_path: Path) -> None:
    _, extra, path = tiny
    backbone = create_backbone("solider:swin-tiny", weights=str(path), semantic_weight=-1)
    assert {f"semantic_embed_{k}.{i}.{p}" for k in "wb" for i in range(4) for p in ("weight", "bias")} <= set(
        backbone.dropped_keys
    )
    with pytest.raises(PlipbenchError, match="holds swin-tiny, not swin-base"):
        create_backbone("solider:swin-base", weights=str(path))


def test_renamed_or_missing_key_lists_every_key(tiny, tmp_path: Path) -> None:
    hf, extra, _ = tiny
    state = hf_to_solider(hf, extra)
    state["stages.1.blocks.0.attn.w_msa.qkv_.weight"] = state.pop("stages.1.blocks.0.attn.w_msa.qkv.weight")
    del state["norm1.bias"]
    with pytest.raises(PlipbenchError) as info:
        create_backbone("solider:swin-tiny", weights=str(save(state, tmp_path / "bad.pth")))
    assert "2 missing key(s): norm1.bias, stages.1.blocks.0.attn.w_msa.qkv.weight" in str(info.value)
    assert "1 unexpected key(s): stages.1.blocks.0.attn.w_msa.qkv_.weight" in str(info.value)


def test_passes_models_check(tiny) -> None:
    _, _, path = tiny
    backbone = create_backbone("solider:swin-tiny", weights=str(path), image_size=(64, 32))
    failed = [r for r in check_backbone(backbone) if not r.passed]
    assert not failed, failed
