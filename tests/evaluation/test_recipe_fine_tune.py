"""The image ReID fine-tune run from a recipe: a tiny run records the resolved recipe, its lr follows the
reference schedule, the last stride and the misfits."""

from __future__ import annotations

import copy
import dataclasses
import math
import re

import pytest
import torch
from protocol_fixtures import (
    IMAGE_TASK,
    TEXT_TASK,
    assert_state_unchanged,
    image_only_backbone,
    make_context,
    plip_mini,
    real_store,
    state_snapshot,
    synthetic_dataset,
    task_data,
)

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.protocols.heads import set_last_stride_one
from plipbench.evaluation.protocols.losses import batch_hard_triplet_loss
from plipbench.evaluation.protocols.recipe_run import EpochScheduler, wants_recipe
from plipbench.recipes import build_lr_scheduler, build_optimizer, resolve_recipe


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-market", "market1501", 48, 4)


def _run(market, options, backbone=None):
    backbone = backbone or plip_mini()
    ctx = make_context(IMAGE_TASK, "fine-tune", task_data(market, val=False), backbone, real_store(backbone),
                       options)
    return get_protocol("image-reid", "fine-tune")(ctx)


SHORT = {"recipe": "bot", "epochs": 1, "warmup_epochs": 0, "schedule.milestones": [1], "batch_size": 16,
         "input_size": "native"}


def test_bot_tiny_run_records_the_resolved_recipe(market):
    backbone = plip_mini()
    before = state_snapshot(backbone)
    out = _run(market, {**SHORT, "max_steps": 2})
    assert_state_unchanged(backbone, before)  # trained on a copy, last stride included
    details = out.details
    assert details["recipe"]["name"] == "bot" and len(details["recipe_sha256"]) == 64
    resolved = details["recipe"]["recipe"]
    assert resolved["optimizer"]["name"] == "adam" and resolved["optimizer"]["lr"] == 3.5e-4
    assert resolved["epochs"] == 1 and resolved["warmup"] is None and resolved["input"]["size"] == [128, 64]
    assert details["short_run"] is True and details["paper_compatible"] is False
    assert details["recipe"]["mean"] == list(backbone.image_transform.mean)  # normalize: backbone
    assert details["last_stride"] and details["steps"] == 2
    assert set(details["train_loss"][0]) == {"id", "triplet"}
    assert out.options["recipe"] == "bot" and out.selection_split is None
    assert 0.0 <= out.scores["mAP"] <= 1.0


def test_selection_test_is_recorded_as_paper_compatible(market):
    out = _run(market, {**SHORT, "max_steps": 1, "selection": "test"})
    assert out.details["paper_compatible"] is True
    assert out.details["selection_mode"].startswith("paper-compatible")


def test_the_epoch_lr_follows_the_bot_schedule(market):
    # BoT steps its scheduler at the start of each epoch: epoch 0 already runs at warm-up step 1
    opts = {"recipe": "bot", "epochs": 4, "warmup": 2, "schedule.milestones": [3], "batch_size": 16,
            "input_size": "native", "max_steps": None}
    out = _run(market, opts)
    base, start = 3.5e-4, 0.01
    lrs = [epoch[0] for epoch in out.details["epoch_lr"]]
    assert len(lrs) == 4
    assert math.isclose(lrs[0], base * (start + (1 - start) * 1 / 2), rel_tol=1e-5)  # warm-up, step 1 of 2
    assert math.isclose(lrs[1], base, rel_tol=1e-5)  # warm-up end (step 2)
    assert math.isclose(lrs[2], base * 0.1, rel_tol=1e-5)  # step 3: past the milestone
    assert math.isclose(lrs[3], base * 0.1, rel_tol=1e-5)


def test_epoch_scheduler_steps_the_recipe_once_per_epoch():
    resolved = resolve_recipe("transreid", _vit_profile(), {})
    model = torch.nn.Linear(4, 2)
    optimizer = build_optimizer(model, resolved.recipe.optimizer)
    scheduler = EpochScheduler(build_lr_scheduler(optimizer, resolved.recipe), optimizer, steps_per_epoch=3)
    for _ in range(3 * 6):
        optimizer.step()
        scheduler.step()
    base = resolved.recipe.optimizer.lr
    weights = [lrs[0] for lrs in scheduler.epoch_lrs]
    # TransReID: timm warm-up from 0.01 x base over 5 epochs, stepped at the start of each epoch (offset 1)
    assert math.isclose(weights[0], 0.01 * base + (base - 0.01 * base) * 1 / 5, rel_tol=1e-6)
    assert math.isclose(weights[4], base * (0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi * 5 / 120))), rel_tol=1e-6)
    state = copy.deepcopy(scheduler.state_dict())
    again = EpochScheduler(build_lr_scheduler(optimizer, resolved.recipe), optimizer, steps_per_epoch=3)
    again.load_state_dict(state)
    assert again.steps == 18 and again.epoch_lrs == scheduler.epoch_lrs


def _vit_profile():
    from plipbench.recipes.backbones import BackboneProfile

    return BackboneProfile(spec="vit-b", name="vit-b", architecture="vit", modalities=("image",),
                           parameters=86_000_000, mean=(0.5,) * 3, std=(0.5,) * 3, input_size=(224, 224),
                           patch_size=16)


def test_unknown_recipe_and_misfits_are_one_line_errors(market):
    with pytest.raises(ConfigError, match=r"unknown recipe 'nope'; known: bot,"):
        _run(market, {"recipe": "nope"})
    with pytest.raises(ConfigError, match=r"recipe 'irra' needs a backbone that encodes image and text|"
                                          r"recipe 'irra' is for vit"):
        _run(market, {"recipe": "irra"}, backbone=image_only_backbone())
    with pytest.raises(ConfigError, match=r"recipe 'rethinking' is a attributes recipe"):
        _run(market, {"recipe": "rethinking", "input_size": "native"})
    with pytest.raises(ConfigError, match="unknown recipe key 'nonsense'"):
        _run(market, {"recipe": "bot", "nonsense": 1})


def test_a_synthetic_task_without_recipe_keeps_the_short_fine_tune(market):
    backbone = plip_mini()
    ctx = make_context(IMAGE_TASK, "fine-tune", task_data(market, val=False), backbone, real_store(backbone), {})
    assert not wants_recipe(ctx)
    real = ctx.task.model_copy(update={"synthetic": False, "dataset": ctx.task.dataset.model_copy(
        update={"synthetic": None, "root": "/data/market"})})
    assert wants_recipe(dataclasses.replace(ctx, task=real))  # a real task runs its default recipe


def test_last_stride_one_on_a_modified_resnet_keeps_the_resolution():
    backbone = copy.deepcopy(plip_mini())
    module = backbone.module
    images = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        grid = []
        hook = _last_stage(module).register_forward_hook(lambda m, i, o: grid.append(o.shape[-2:]))
        module.eval()
        backbone.forward_image(images)
        changes = set_last_stride_one(module)
        out = backbone.forward_image(images)
        hook.remove()
    assert changes and all("layer4.0" in c for c in changes)
    assert tuple(grid[1]) == (2 * grid[0][0], 2 * grid[0][1])
    assert out.shape == (2, backbone.embedding_dim)


def test_last_stride_one_on_a_timm_resnet():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    set_last_stride_one(model)
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 256, 128))
    assert tuple(features.shape[-2:]) == (16, 8)  # stride 16 instead of 32


def _last_stage(module):
    return [m for name, m in module.named_modules() if name.endswith("layer4")][-1]


def test_soft_margin_triplet():
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 4.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # hardest positive 1 for everyone; closest negative 3, sqrt(10), 3, 4
    expected = torch.nn.functional.softplus(torch.tensor([1 - 3.0, 1 - 10 ** 0.5, 1 - 3.0, 1 - 4.0])).mean()
    assert math.isclose(float(batch_hard_triplet_loss(features, labels, None)), float(expected), rel_tol=1e-5)


# -- text ReID ----------------------------------------------------------------------------------------
TEXT_SHORT = {"epochs": 2, "warmup_epochs": 1, "schedule.milestones": [2], "batch_size": 16,
              "input_size": "native"}


@pytest.fixture(scope="module")
def cuhk(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-cuhk", "cuhk-pedes", 40, 2)


def _run_text(cuhk, options):
    backbone = plip_mini()
    ctx = make_context(TEXT_TASK, "fine-tune", task_data(cuhk), backbone, real_store(backbone), options)
    return get_protocol("text-reid", "fine-tune")(ctx)


def test_plip_cmpmc_tiny_run_records_the_recipe_and_its_schedule(cuhk):
    backbone = plip_mini()
    before = state_snapshot(backbone)
    out = _run_text(cuhk, {"recipe": "reference", **TEXT_SHORT})
    assert_state_unchanged(backbone, before)
    details = out.details
    assert details["recipe"]["name"] == "plip-cmpmc" and out.options["recipe"] == "plip-cmpmc"  # CNN: plip-cmpmc
    assert details["recipe"]["recipe"]["optimizer"]["name"] == "adan"
    assert set(details["train_loss"][0]) == {"cmpm", "cmpc"}
    assert details["num_train_samples"] == sum(len(r.captions) for r in cuhk.split("train"))  # captions: each
    base = 1e-4
    lrs = details["epoch_lr"]
    # PLIP's gradual warm-up, stepped after each epoch: epoch 0 at 0.2 x lr, epoch 1 (warm-up end) at the lr;
    # the CMPC classifier's group at x10 follows the same factors
    assert math.isclose(lrs[0][0], 0.2 * base, rel_tol=1e-5) and math.isclose(lrs[1][0], base, rel_tol=1e-5)
    assert math.isclose(lrs[0][-1], 0.2 * base * 10, rel_tol=1e-5)
    assert out.selection_split == "val" and len(details["val_R1"]) == 2


def test_sdm_and_id_losses_run_through_the_text_protocol(cuhk):
    out = _run_text(cuhk, {"recipe": "plip-cmpmc", **TEXT_SHORT, "max_steps": 1,
                           "losses": {"sdm": {"temperature": 0.02}, "id": {"weight": 1.0}}})
    assert set(out.details["train_loss"][0]) == {"sdm", "id"}


def test_sdm_loss_matches_irra():
    import torch.nn.functional as F

    from plipbench.evaluation.protocols.losses import sdm_loss

    torch.manual_seed(0)
    image, text, pid = torch.randn(6, 8), torch.randn(6, 8), torch.tensor([0, 0, 1, 1, 2, 3])
    # IRRA compute_sdm, transcribed
    labels = (pid.reshape(6, 1) - pid.reshape(6, 1).t() == 0).float()
    t2i = F.normalize(text, dim=1) @ F.normalize(image, dim=1).t()
    dist = labels / labels.sum(dim=1)
    expected = 0
    for logits in (t2i.t() / 0.02, t2i / 0.02):
        expected += torch.mean(torch.sum(F.softmax(logits, 1) * (F.log_softmax(logits, 1) - torch.log(dist + 1e-8)), 1))
    assert math.isclose(float(sdm_loss(image, text, pid, 0.02)), float(expected), rel_tol=1e-5)


def test_a_text_recipe_on_an_image_only_backbone_is_refused(cuhk):
    backbone = image_only_backbone()
    ctx = make_context(TEXT_TASK, "fine-tune", task_data(cuhk), backbone, real_store(backbone),
                       {"recipe": "plip-cmpmc"})
    with pytest.raises(ConfigError, match="needs a backbone that encodes image and text; tiny-cnn has no text"):
        get_protocol("text-reid", "fine-tune")(ctx)


# -- task files ---------------------------------------------------------------------------------------
def _recipe_protocols():
    from protocol_fixtures import TASKS

    from plipbench.evaluation.tasks import load_task_file

    for path in sorted(TASKS.glob("*/*.yaml")):
        if path.parent.name == "suites":
            continue
        task = load_task_file(path)
        for spec in task.protocols:
            if spec.base == "fine-tune" and "recipe" in spec.options:
                yield task, spec


def test_every_task_recipe_resolves_for_a_cnn_and_a_vit():
    from plipbench.evaluation.protocols.recipe_run import RUN_OPTIONS
    from plipbench.recipes import default_recipe, profile_backbone

    cnn = profile_backbone(plip_mini())
    vit = _vit_profile().model_copy(update={"modalities": ("image", "text")})
    seen = set()
    for task, spec in _recipe_protocols():
        seen.add((task.kind, task.synthetic))
        overrides = {k: v for k, v in spec.options.items() if k not in RUN_OPTIONS}
        for profile in (cnn, vit):
            name = default_recipe(task.kind, profile)
            resolved = resolve_recipe(name, profile, overrides)
            assert resolved.short_run == task.synthetic, (task.name, name)
            if task.synthetic:  # the mini suite's named overrides: one epoch, batches of 32
                assert resolved.recipe.epochs == 1 and resolved.recipe.sampler.batch_size == 32
    # the synthetic twins (the mini suite) still run the short hand-written fine-tunes: the recipe path decodes
    # and augments every image per step (1.7x slower measured on synth-market1501) and would move every
    # committed mini number; they move to the recipes with named short overrides together with a decoded cache
    assert seen == {("image-reid", False), ("text-reid", False)}


@pytest.mark.parametrize(("options", "message"), [
    ({"recipe": "plip-cmpmc", "sync_bn": "yes"}, "option 'sync_bn' expects true or false, got 'yes'"),
    ({"recipe": "plip-cmpmc", "max_steps": 0}, "option 'max_steps' expects an integer >= 1 or null, got 0"),
    ({"recipe": "plip-cmpmc", "directions": ["i2t"]}, "option 'directions' expects a list holding 't2i'"),
    ({"recipe": "plip-cmpmc", "nonsense": 1}, "unknown recipe key 'nonsense'"),  # an override: the resolver's
])
def test_a_text_recipe_run_types_its_own_options(cuhk, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        _run_text(cuhk, options)
    assert "\n" not in str(err.value)
