"""Parameter groups and optimizers built from the recipes (downstream-recipes.md §1.1, §2.1, §3.1, §3.2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from plipbench.recipes import build_optimizer, param_groups, resolve_recipe
from plipbench.recipes.optim import build_center_optimizer, parameter_settings


class TinyIRRA(nn.Module):
    """Parameter names as in IRRA's model: towers, cross-modal layers, the ID classifier, the MLM head."""

    def __init__(self) -> None:
        super().__init__()
        self.visual = nn.Linear(2, 2)
        self.cross_attn = nn.Linear(2, 2)
        self.classifier = nn.Linear(2, 2)
        self.mlm_head = nn.Sequential(nn.Linear(2, 2))
        self.ln_post = nn.LayerNorm(2)


def test_irra_rule_order(clip_vit_b) -> None:
    # §3.1 "Rule order: cross -> x5, then bias -> x2 with wd 0 (overrides), then classifier/mlm_head -> x5 (lr only;
    # their biases keep wd 0). The ln_pre_*/ln_post LayerNorms stay at 1x"
    spec = resolve_recipe("irra", clip_vit_b).recipe.optimizer
    lr, wd = 1e-5, 4e-5
    expected = {
        "visual.weight": (lr, wd), "visual.bias": (2 * lr, 0.0),
        "cross_attn.weight": (5 * lr, wd), "cross_attn.bias": (2 * lr, 0.0),
        "classifier.weight": (5 * lr, wd), "classifier.bias": (5 * lr, 0.0),
        "mlm_head.0.weight": (5 * lr, wd), "mlm_head.0.bias": (5 * lr, 0.0),
        "ln_post.weight": (lr, wd), "ln_post.bias": (2 * lr, 0.0),
    }  # fmt: skip
    got = {name: parameter_settings(name, spec) for name, _ in TinyIRRA().named_parameters()}
    assert got == {name: pytest.approx(value) for name, value in expected.items()}
    optimizer = build_optimizer(TinyIRRA(), spec)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["eps"] == 1e-3
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(expected)


def test_bot_adam_with_coupled_l2_on_biases_and_a_frozen_neck_bias(resnet50) -> None:
    spec = resolve_recipe("bot", resnet50).recipe.optimizer
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model[1].bias.requires_grad_(False)  # the BNNeck's frozen bias
    groups = param_groups(model.named_parameters(), spec)
    assert [(g["names"], g["lr"], g["weight_decay"]) for g in groups] == [
        (["0.weight", "0.bias", "1.weight"], 3.5e-4, 5e-4)
    ]
    optimizer = build_optimizer(model, spec)
    assert type(optimizer) is torch.optim.Adam  # not AdamW


def test_coupled_l2_is_weight_decay_in_the_gradient(resnet50) -> None:
    # Adam's coupled L2 = Adam without decay on loss + wd/2 |w|^2; AdamW (decoupled) differs
    spec = resolve_recipe("bot", resnet50).recipe.optimizer
    torch.manual_seed(0)
    start = torch.randn(5)

    def one_step(build, extra_l2: float) -> torch.Tensor:
        w = nn.Parameter(start.clone())
        optimizer = build([w])
        loss = (w * torch.arange(5.0)).sum() + extra_l2 / 2 * (w**2).sum()
        loss.backward()
        optimizer.step()
        return w.detach()

    coupled = one_step(lambda p: build_optimizer([("w", p[0])], spec), 0.0)
    by_hand = one_step(lambda p: torch.optim.Adam(p, lr=3.5e-4), 5e-4)
    decoupled = one_step(lambda p: torch.optim.AdamW(p, lr=3.5e-4, weight_decay=5e-4), 0.0)
    assert torch.allclose(coupled, by_hand, atol=1e-9) and not torch.allclose(coupled, decoupled, atol=1e-9)


def test_transreid_sgd_with_momentum_and_bias_lr_x2(vit_b) -> None:
    spec = resolve_recipe("transreid", vit_b).recipe.optimizer
    optimizer = build_optimizer(nn.Linear(3, 2), spec)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert {g["names"][0]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups} == {
        "weight": (8e-3, 1e-4), "bias": (1.6e-2, 1e-4)
    }  # fmt: skip


def test_plip_adan_and_the_cmpc_classifier_group(plip_rn50) -> None:
    from timm.optim import Adan

    recipe = resolve_recipe("plip-cmpmc", plip_rn50).recipe
    classifier = nn.Parameter(torch.zeros(4, 3))
    extra = [{"params": [classifier], "lr": recipe.optimizer.lr * recipe.losses.cmpc.classifier_lr_factor}]
    optimizer = build_optimizer(nn.Linear(3, 2), recipe.optimizer, extra)
    assert isinstance(optimizer, Adan) and optimizer.defaults["betas"] == (0.98, 0.92, 0.99)
    assert optimizer.defaults["weight_decay"] == 0.02 and optimizer.param_groups[-1]["lr"] == pytest.approx(
        1e-3
    )


def test_centre_loss_has_its_own_sgd(resnet50) -> None:
    center = resolve_recipe("bot", resnet50, {"losses.center.enabled": True}).recipe.losses.center
    optimizer = build_center_optimizer([nn.Parameter(torch.zeros(10, 4))], center)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["lr"] == 0.5
