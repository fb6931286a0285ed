"""The ``warmup_epochs`` shorthand: 0 switches the warm-up off, N sets its length."""

from __future__ import annotations

from plipbench.recipes import resolve_recipe


def test_warmup_epochs_zero_switches_the_warm_up_off(resnet50) -> None:
    resolved = resolve_recipe("bot", resnet50, {"warmup_epochs": 0})
    assert resolved.recipe.warmup is None and resolved.overrides == {"warmup_epochs": 0}


def test_warmup_epochs_sets_the_length(resnet50) -> None:
    resolved = resolve_recipe("bot", resnet50, {"warmup_epochs": 3})
    assert resolved.recipe.warmup.epochs == 3 and resolved.recipe.warmup.start_factor == 0.01
