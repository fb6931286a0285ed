"""The lr schedules built from the recipes follow the reference code's own schedules, epoch by epoch.

Each reference is re-created here from its source (downstream-recipes.md): BoT's WarmupMultiStepLR
formula stepped at each epoch's start (§1.1), TransReID's timm CosineLRScheduler itself (§2, the
reference calls it), IRRA's LRSchedulerWithWarmup formula stepped after each epoch (§3.1), and PLIP's
cumulative ``gradual_warmup`` with torch's StepLR (§3.2; plip-paper-and-code.md §5.5).
"""

from __future__ import annotations

import math
from bisect import bisect_right

import pytest
import torch

from plipbench.errors import ConfigError
from plipbench.recipes import build_lr_scheduler, build_optimizer, lr_factor, resolve_recipe


def our_lrs(recipe, *, group_factors=(1.0,)) -> list[list[float]]:
    """The lr of each param group in each epoch, from our scheduler stepped after every epoch."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in group_factors]
    groups = [
        {"params": [p], "lr": recipe.optimizer.lr * f} for p, f in zip(params, group_factors, strict=True)
    ]
    optimizer = torch.optim.SGD(groups, lr=recipe.optimizer.lr)
    scheduler = build_lr_scheduler(optimizer, recipe)
    out = []
    for _ in range(recipe.epochs):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


def test_bot_matches_warmup_multistep_lr_stepped_at_epoch_start(resnet50) -> None:
    recipe = resolve_recipe("bot", resnet50).recipe
    base, factor, warm, milestones = 3.5e-4, 0.01, 10, [40, 70]

    def reference(last_epoch: int) -> float:  # solver/lr_scheduler.py WarmupMultiStepLR.get_lr
        alpha = last_epoch / warm
        warmup = factor * (1 - alpha) + alpha if last_epoch < warm else 1.0
        return base * warmup * 0.1 ** bisect_right(milestones, last_epoch)

    expected = [reference(epoch + 1) for epoch in range(120)]  # ignite EPOCH_STARTED: epoch 1 runs at step 1
    ours = [lrs[0] for lrs in our_lrs(recipe)]
    assert ours == pytest.approx(expected, rel=1e-9)
    assert ours[0] == pytest.approx(3.815e-5)  # warm-up start: "the code gives 3.8e-5 in epoch 1" (§1.1)
    assert ours[8] < base and ours[9] == pytest.approx(base)  # warm-up end: full lr from epoch 10 (1-based)
    assert ours[38] == pytest.approx(base) and ours[39] == pytest.approx(base * 0.1)  # milestone 40
    assert ours[68] == pytest.approx(base * 0.1) and ours[69] == pytest.approx(base * 0.01)  # milestone 70
    assert ours[119] == pytest.approx(base * 0.01)


def test_transreid_matches_timm_cosine_lr_scheduler_for_base_and_bias_groups(vit_b) -> None:
    from timm.scheduler import CosineLRScheduler

    recipe = resolve_recipe("transreid", vit_b).recipe
    base = 8e-3
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    optimizer = torch.optim.SGD(
        [{"params": [params[0]], "lr": base}, {"params": [params[1]], "lr": 2 * base}], lr=base
    )
    # solver/scheduler_factory.py, as TransReID configures it (its t_mul / decay_rate are timm 1.0's cycle_*)
    scheduler = CosineLRScheduler(
        optimizer, t_initial=120, lr_min=0.002 * base, cycle_mul=1.0, cycle_decay=0.1, warmup_lr_init=0.01 * base,
        warmup_t=5, cycle_limit=1, t_in_epochs=True,
    )  # fmt: skip
    expected = []
    for epoch in range(1, 121):  # processor.py: scheduler.step(epoch) at the start of epoch 1..120
        scheduler.step(epoch)
        expected.append([g["lr"] for g in optimizer.param_groups])
    ours = our_lrs(recipe, group_factors=(1.0, 2.0))
    assert ours == [pytest.approx(row, rel=1e-9) for row in expected]
    assert ours[0][0] == pytest.approx(0.01 * base + (base - 0.01 * base) / 5)  # warm-up start (step 1)
    assert ours[4][0] == pytest.approx(
        0.002 * base + 0.5 * (base - 0.002 * base) * (1 + math.cos(math.pi * 5 / 120))
    )
    assert ours[119][0] == pytest.approx(0.002 * base)  # the floor at step 120


def test_ssl_warmup_ends_inside_the_cosine(pass_vit_b) -> None:
    # §2: with a 20-epoch warm-up inside the 120-epoch cosine, the lr at the warm-up's end is ~0.93 of the base
    recipe = resolve_recipe("transreid", pass_vit_b).recipe
    assert lr_factor(recipe, 19) == pytest.approx(0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi / 6)))
    assert lr_factor(recipe, 19) == pytest.approx(0.933, abs=1e-3)


def test_irra_matches_lr_scheduler_with_warmup_stepped_after_each_epoch(clip_vit_b) -> None:
    recipe = resolve_recipe("irra", clip_vit_b).recipe
    base, warm, total = 1e-5, 5, 60

    def reference(
        last_epoch: int,
    ) -> float:  # solver/lr_scheduler.py LRSchedulerWithWarmup.get_lr, cosine mode
        if last_epoch < warm:
            alpha = last_epoch / warm
            return base * (0.1 * (1 - alpha) + alpha)
        ratio = (last_epoch - warm) / (total - warm)
        return 0.0 + (base - 0.0) * 0.5 * (1 + math.cos(math.pi * ratio))

    ours = [lrs[0] for lrs in our_lrs(recipe)]
    assert ours == pytest.approx([reference(epoch) for epoch in range(60)], rel=1e-9)
    assert ours[0] == pytest.approx(0.1 * base)  # warm-up start
    assert ours[5] == pytest.approx(base)  # warm-up end: the cosine starts at the full lr
    assert ours[59] == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * 54 / 55)))


def test_plip_cmpmc_matches_cumulative_gradual_warmup_and_step_lr(plip_rn50) -> None:
    recipe = resolve_recipe("plip-cmpmc", plip_rn50).recipe
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
    # train.py: image encoder, text encoder at lr; the CMPC classifier (Loss.parameters()) at 10 x lr
    optimizer = torch.optim.SGD(
        [{"params": [p], "lr": lr} for p, lr in zip(params, (1e-4, 1e-4, 1e-3), strict=True)]
    )
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, 20, gamma=0.1
    )  # utils.lr_scheduler, epoches_decay '20'
    expected = []
    for epoch in range(30):
        if epoch < 5:  # utils.gradual_warmup(epoch, optimizer, epochs=5): a cumulative product
            done = (epoch + 1) / 5 if epoch == 0 else (epoch + 1) / epoch
            for group in optimizer.param_groups:
                group["lr"] *= done
        expected.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    ours = our_lrs(recipe, group_factors=(1.0, 1.0, 10.0))
    assert ours == [pytest.approx(row, rel=1e-9) for row in expected]
    assert ours[0][0] == pytest.approx(0.2e-4) and ours[4][0] == pytest.approx(1e-4)  # warm-up start, end
    assert ours[19][2] == pytest.approx(1e-3) and ours[20][2] == pytest.approx(1e-4)  # the step at epoch 20


def test_plateau_schedule_is_torch_reduce_on_plateau(resnet50) -> None:
    recipe = resolve_recipe("rethinking", resnet50).recipe
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    scheduler = build_lr_scheduler(optimizer, recipe)
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for _ in range(6):  # patience 4: the fifth epoch without improvement cuts the lr by 10
        scheduler.step(1.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_epochs_scale_shortens_the_schedule_and_is_recorded(resnet50) -> None:
    short = resolve_recipe("bot", resnet50, {"epochs_scale": 0.1})
    assert (short.recipe.epochs, short.recipe.warmup.epochs, short.recipe.schedule.milestones) == (
        12,
        1,
        (4, 7),
    )
    assert short.short_run and short.overrides == {"epochs_scale": 0.1}
    named = resolve_recipe("bot", resnet50, {"epochs": 80, "warmup": 5})
    assert (
        named.short_run and named.recipe.warmup.epochs == 5 and named.overrides == {"epochs": 80, "warmup": 5}
    )
    with pytest.raises(ConfigError, match="collapse"):
        resolve_recipe("bot", resnet50, {"epochs_scale": 0.01})
    with pytest.raises(ConfigError, match="past the last epoch"):
        resolve_recipe("bot", resnet50, {"epochs": 50})


def test_stop_after_truncates_the_schedule_without_compressing_it(resnet50, vit_b) -> None:
    """``stop_after`` (the mini suite's short runs): the first N epochs of the schedule over ``epochs``; a cosine
    keeps its length, so the lr of a truncated epoch is the full run's lr of that epoch."""
    full = resolve_recipe("transreid", vit_b, {"warmup_epochs": 0}).recipe
    short = resolve_recipe("transreid", vit_b, {"warmup_epochs": 0, "stop_after": 2})
    assert short.short_run and short.recipe.train_epochs == 2 and short.recipe.epochs == full.epochs == 120
    assert our_lrs(short.recipe)[:2] == our_lrs(full)[:2]
    assert our_lrs(short.recipe)[1][0] < short.recipe.optimizer.lr  # the cosine has started to decay, slowly
    assert our_lrs(short.recipe)[1][0] > 0.99 * short.recipe.optimizer.lr
    bot = resolve_recipe("bot", resnet50, {"stop_after": 2, "warmup_epochs": 0})
    assert bot.short_run and bot.recipe.schedule.milestones == (40, 70)  # never reached, not moved
    assert not resolve_recipe("bot", resnet50, {"stop_after": 120}).short_run  # the whole recipe
    with pytest.raises(ConfigError, match=r"stop_after \(121\) is past the last epoch \(120\)"):
        resolve_recipe("bot", resnet50, {"stop_after": 121})


def test_the_schedule_drives_a_built_optimizer(vit_b) -> None:
    recipe = resolve_recipe("transreid", vit_b).recipe
    model = torch.nn.Linear(3, 2)
    optimizer = build_optimizer(model, recipe.optimizer)
    build_lr_scheduler(optimizer, recipe)
    lrs = {tuple(g["names"]): g["lr"] for g in optimizer.param_groups}
    # epoch 0 runs at step 1 of the warm-up; the x2 bias group starts from the same absolute warmup_lr_init
    assert lrs[("weight",)] == pytest.approx(8e-5 + (8e-3 - 8e-5) / 5)
    assert lrs[("bias",)] == pytest.approx(8e-5 + (1.6e-2 - 8e-5) / 5)
