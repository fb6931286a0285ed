"""The attribute fine-tune run from a recipe (``rethinking`` / ``solider-par``): the exp-ratio weighted BCE, the
plateau schedule on the val loss, EMA in the shared loop, the resolved recipe in the result, resume, misfits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from protocol_fixtures import (
    ATTRIBUTE_TASK,
    assert_state_unchanged,
    image_only_backbone,
    make_context,
    real_store,
    state_snapshot,
    synthetic_dataset,
    task_data,
)
from resume_fixtures import DiesAfter, Killed

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.protocols.attribute_recipe import recipe_bce
from plipbench.evaluation.protocols.loop import fine_tune_loop
from plipbench.evaluation.protocols.recipe_run import EpochScheduler
from plipbench.evaluation.protocols.samplers import RandomBatchSampler
from plipbench.evaluation.resume import FineTuneCheckpoint
from plipbench.recipes import default_recipe, resolve_recipe
from plipbench.recipes.schema import EmaSpec, WeightedBCESpec

# a short, named run of the recipe: 8 images a batch, at the tiny CNN's own 64 x 32
SHORT = {"recipe": "rethinking", "epochs": 2, "batch_size": 8, "input_size": "native"}


@pytest.fixture(scope="module")
def pa100k(tmp_path_factory):
    torch.set_num_threads(1)
    return task_data(synthetic_dataset(tmp_path_factory.mktemp("data"), "synth-pa100k", "pa100k", 12, 4))


def _run(data, options, checkpoint=None):
    backbone = image_only_backbone()
    ctx = make_context(ATTRIBUTE_TASK, "fine-tune", data, backbone, real_store(backbone), options)
    ctx.checkpoint = checkpoint
    return get_protocol("attributes", "fine-tune")(ctx)


# -- the loss --------------------------------------------------------------------------------------------------
def test_recipe_bce_equals_a_hand_computation() -> None:
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.5, -0.5, 0.25]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    ratio = torch.tensor([0.25, 0.5, 0.1])
    total = 0.0
    for i in range(2):
        for j in range(3):
            p = 1 / (1 + math.exp(-float(logits[i, j])))
            if targets[i, j] == 1:
                total += math.exp(1 - float(ratio[j])) * -math.log(p)
            else:
                total += math.exp(float(ratio[j])) * -math.log(1 - p)
    spec = WeightedBCESpec(weighting="exp-ratio", reduction="sum-attributes-mean-batch")
    assert float(recipe_bce(logits, targets, ratio, spec)) == pytest.approx(total / 2, rel=1e-6)
    # the docstring's example
    one = recipe_bce(torch.zeros(1, 1), torch.ones(1, 1), torch.tensor([0.25]), spec)
    assert float(one) == pytest.approx(math.exp(0.75) * math.log(2), rel=1e-6)
    plain = WeightedBCESpec(weighting="none", reduction="mean", weight=2.0)
    expected = 2 * torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert float(recipe_bce(logits, targets, ratio, plain)) == pytest.approx(float(expected), rel=1e-6)


def test_first_step_loss_is_the_hand_computed_weighted_bce(pa100k) -> None:
    """One step of the protocol: its recorded loss is the exp-ratio BCE of the initial model on the first batch."""
    from plipbench.evaluation.protocols.attributes import attribute_labels
    from plipbench.evaluation.protocols.recipe_run import RecipeImages
    from plipbench.recipes import build_train_transform

    out = _run(pa100k, {**SHORT, "epochs": 1, "max_steps": 1, "ema": None})
    backbone = image_only_backbone()
    resolved = resolve_recipe("rethinking", backbone, {"epochs": 1, "batch_size": 8, "ema": None,
                                                       "input.size": [64, 32]}, dataset="pa100k")
    train = pa100k.train_records
    labels = attribute_labels(make_context(ATTRIBUTE_TASK, "fine-tune", pa100k, backbone, None), train, "train")
    ratio = labels.astype(np.float64).mean(0)
    batch = next(iter(RandomBatchSampler(len(train), 8, drop_last=True, seed=0)))
    dataset = RecipeImages(train, build_train_transform(resolved), list(range(len(train))), seed=0)
    images = torch.stack([dataset[i][0] for i in batch])
    torch.manual_seed(0)
    head = torch.nn.Linear(16, labels.shape[1])  # seeded as the protocol's head (ctx.seed 0)
    with torch.no_grad():
        logits = head(backbone.module(images)).double().numpy()
    y = labels[batch].astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    w = np.where(y == 1, np.exp(1 - ratio), np.exp(ratio))
    hand = (w * -(y * np.log(p) + (1 - y) * np.log(1 - p))).sum(1).mean()
    assert out.details["curve"][0]["loss"]["bce"] == pytest.approx(hand, rel=1e-5)
    assert out.details["steps"] == 1


# -- the recipe in the result ------------------------------------------------------------------------------------
def test_default_recipe_by_backbone_kind() -> None:
    backbone = image_only_backbone()
    assert default_recipe("attributes", backbone) == "rethinking"
    assert default_recipe("attributes", backbone, architecture="vit") == "solider-par"
    assert default_recipe("attributes", backbone, architecture="swin") == "solider-par"


def test_tiny_run_records_the_resolved_recipe(pa100k) -> None:
    backbone = image_only_backbone()
    before = state_snapshot(backbone)
    out = _run(pa100k, {**SHORT, "max_steps": 5})
    assert_state_unchanged(backbone, before)
    details = out.details
    assert details["recipe"]["name"] == "rethinking" and len(details["recipe_sha256"]) == 64
    recipe = details["recipe"]["recipe"]
    assert recipe["optimizer"]["name"] == "adam" and recipe["optimizer"]["lr"] == 1e-4
    assert recipe["optimizer"]["weight_decay"] == 5e-4 and recipe["optimizer"]["coupled_l2"] is True
    assert recipe["neck"]["logits_bn"] is False and recipe["schedule"]["kind"] == "plateau"
    assert recipe["ema"] == {"decay": 0.9998, "evaluate_ema": True}  # the pa100k values of the recipe
    assert details["recipe"]["dataset"] == "pa100k" and details["short_run"] is True
    assert details["classifier"] == "Linear" and details["ema"] == recipe["ema"]
    assert details["plateau_monitor"] == "val loss" and details["selection"] == "best val mA"
    assert out.selection_split == "val" and details["paper_compatible"] is False
    assert out.options["recipe"] == "rethinking" and out.options["resolved_overrides"]["epochs"] == 2
    assert details["steps"] == 5 and len(details["curve"]) == 2  # 4 batches of 8 (drop_last), then 1
    assert all({"loss", "lr", "val", "val_loss"} <= set(p) for p in details["curve"])
    assert details["val_loss"] == [p["val_loss"] for p in details["curve"]]
    assert set(out.scores) == {"mA", "Acc", "Prec", "Rec", "F1"}


def test_selection_on_test_is_the_recorded_paper_compatible_opt_in(pa100k) -> None:
    out = _run(pa100k, {**SHORT, "selection": "test", "ema": None})
    assert out.selection_split == "test" and out.details["paper_compatible"] is True
    assert out.details["selection_mode"] == "paper-compatible (test)"
    assert out.details["plateau_monitor"] == "test loss" and out.details["selection"] == "best test mA"


def test_without_a_val_split_the_last_epoch_is_kept_and_the_plateau_watches_the_train_loss(tmp_path) -> None:
    data = task_data(synthetic_dataset(tmp_path, "synth-pa100k", "pa100k", 12, 4), val=False)
    out = _run(data, {**SHORT, "ema": None})
    assert out.selection_split is None and out.details["selection"] == "last-epoch"
    assert out.details["plateau_monitor"].startswith("mean train loss")


# -- the plateau schedule ----------------------------------------------------------------------------------------
def test_plateau_scheduler_steps_on_the_watched_value_and_resumes() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=2)
    scheduler = EpochScheduler(plateau, optimizer, steps_per_epoch=3, monitor="val_loss")
    lrs = []
    for value in (1.0, 0.5, 0.6, 0.7, 0.8, 0.9):
        for _ in range(3):
            scheduler.step()  # per step: never moves the plateau
        scheduler.end_epoch({"val_loss": value, "train_bce": 0.0})
        lrs.append(optimizer.param_groups[0]["lr"])
    # best 0.5 at epoch 2; epochs 3, 4, 5 do not improve: the 3rd bad epoch (> patience 2) divides by 10
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.1, 0.1])
    assert scheduler.monitored == [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]
    again = EpochScheduler(torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=2),
                           optimizer, 3, monitor="val_loss")
    again.load_state_dict(scheduler.state_dict())
    assert again.scheduler.num_bad_epochs == scheduler.scheduler.num_bad_epochs and again.steps == 18
    with pytest.raises(ConfigError, match="watches 'val_loss'"):
        scheduler.end_epoch({"train_bce": 1.0})
    with pytest.raises(ConfigError, match="monitor"):
        EpochScheduler(plateau, optimizer, 3)


def test_plateau_lowers_the_lr_after_patience_epochs_without_val_improvement(pa100k) -> None:
    # at lr 1e-12 the val loss cannot improve by the plateau's relative 1e-4: epoch 1 sets the best, epochs 2
    # and 3 are bad, and the second bad epoch (> patience 1) divides the lr by 10 for epoch 4
    out = _run(pa100k, {**SHORT, "epochs": 4, "lr": 1e-12, "schedule.patience": 1, "ema": None})
    assert [lrs[0] for lrs in out.details["epoch_lr"]] == pytest.approx([1e-12, 1e-12, 1e-12, 1e-13], rel=1e-6)
    assert [p["lr"] for p in out.details["curve"]] == pytest.approx([1e-12, 1e-12, 1e-13, 1e-13], rel=1e-6)
    losses = out.details["val_loss"]
    assert len(losses) == 4 and max(losses) - min(losses) < 1e-4 * losses[0]


# -- EMA in the shared loop --------------------------------------------------------------------------------------
class _Points:
    """Eight 2-d points with a regression target; ``set_epoch`` as the loop expects."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(8, 2, generator=g), torch.randn(8, 1, generator=g)

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


class _Recording:
    """A scheduler that records the raw weights after every optimizer step."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module, self.raw = module, []

    def step(self) -> None:
        self.raw.append(self.module.weight.detach().clone())

    def state_dict(self):
        return {}

    def load_state_dict(self, state) -> None:
        pass


def _ema_loop(evaluate_ema: bool, decay: float = 0.5):
    torch.manual_seed(0)
    module = torch.nn.Linear(2, 1)
    dataset, sampler = _Points(), RandomBatchSampler(8, 4, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    scheduler = _Recording(module)
    seen_in_step, seen_in_validate = [], []

    def step(batch):
        seen_in_step.append(module.weight.detach().clone())
        x, y = batch
        loss = torch.nn.functional.mse_loss(module(x), y)
        return loss, {"mse": loss}, 1

    def validate() -> float:
        seen_in_validate.append(module.weight.detach().clone())
        return float(len(seen_in_validate))  # improves every epoch: the last epoch is kept

    initial = module.weight.detach().clone()
    fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=2, max_steps=None, train_modules=[module],
                   step=step, validate=validate, state_module=module, ema=EmaSpec(decay=decay,
                                                                                  evaluate_ema=evaluate_ema))
    ema, expected = initial, []
    for i, raw in enumerate(scheduler.raw):
        ema = decay * ema + (1 - decay) * raw
        if i % 2 == 1:  # 2 steps an epoch
            expected.append(ema)
    return module, scheduler.raw, seen_in_step, seen_in_validate, expected


def test_ema_weights_are_what_validation_and_the_kept_state_see() -> None:
    module, raw, seen_in_step, seen_in_validate, expected = _ema_loop(evaluate_ema=True)
    for got, want, trained in zip(seen_in_validate, expected, (raw[1], raw[3]), strict=True):
        assert torch.allclose(got, want, atol=1e-7)
        assert not torch.allclose(got, trained, atol=1e-4), "EMA weights differ from the raw ones"
    # training went on from the raw weights, not the EMA's swapped in for the validation
    assert torch.equal(seen_in_step[2], raw[1])
    assert torch.allclose(module.weight.detach(), expected[-1], atol=1e-7)  # the kept (EMA) state


def test_ema_without_evaluate_ema_validates_the_raw_weights() -> None:
    module, raw, _, seen_in_validate, expected = _ema_loop(evaluate_ema=False)
    assert torch.equal(seen_in_validate[0], raw[1]) and torch.equal(seen_in_validate[1], raw[3])
    assert torch.equal(module.weight.detach(), raw[3])


def test_protocol_with_ema_evaluates_other_weights_than_without(pa100k) -> None:
    with_ema = _run(pa100k, {**SHORT, "lr": 1e-2})
    without = _run(pa100k, {**SHORT, "lr": 1e-2, "ema": None})
    assert with_ema.details["ema"]["evaluate_ema"] is True and without.details["ema"] is None
    assert with_ema.details["curve"][0]["loss"] == without.details["curve"][0]["loss"]  # same training
    assert not np.array_equal(with_ema.per_query["probs"], without.per_query["probs"])
    assert with_ema.details["val_loss"] != without.details["val_loss"]


# -- resume ------------------------------------------------------------------------------------------------------


def test_resumed_recipe_run_with_ema_and_plateau_equals_the_uninterrupted_one(pa100k, tmp_path) -> None:
    options = {**SHORT, "epochs": 3, "lr": 1e-3, "schedule.patience": 0}
    full = _run(pa100k, options)
    assert full.details["ema"] is not None
    spec = {"kind": "attributes-recipe"}
    with pytest.raises(Killed):
        _run(pa100k, options, DiesAfter(tmp_path / "ckpt", spec, resume=False, after=0))
    torch.rand(5), np.random.rand(2)  # draws in between must not matter
    checkpoint = FineTuneCheckpoint(tmp_path / "ckpt", spec, resume=True)
    resumed = _run(pa100k, options, checkpoint)
    assert checkpoint.resumed_after == 1
    assert resumed.scores == full.scores
    for key in full.per_query:
        assert np.array_equal(full.per_query[key], resumed.per_query[key]), key
    for key in ("curve", "epoch_lr", "val_loss", "val_mA", "selected_epoch"):
        assert resumed.details[key] == full.details[key], key


# -- misfits -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("recipe", "extra", "message"), [
    ("irra", {}, "is for vit backbones"),  # a text recipe on an image-only CNN
    ("solider-par", {}, "is for swin/vit backbones"),  # the transformer recipe on a CNN
    # an image ReID recipe (short enough to resolve): not an attribute recipe
    ("bot", {"warmup_epochs": 0, "schedule.milestones": [1]}, "is a image-reid recipe, not attributes"),
    ("nope", {}, "unknown recipe 'nope'"),
])
def test_a_misfit_recipe_is_a_one_line_config_error(pa100k, recipe, extra, message) -> None:
    with pytest.raises(ConfigError) as err:
        _run(pa100k, {**SHORT, "recipe": recipe, **extra})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_override_is_a_one_line_config_error(pa100k) -> None:
    with pytest.raises(ConfigError) as err:
        _run(pa100k, {**SHORT, "classifier_lr_factor": 10})
    assert "\n" not in str(err.value)


# -- which fine-tune runs ----------------------------------------------------------------------------------------
def test_the_paper_suite_attribute_fine_tunes_run_the_recipe_and_the_twins_the_short_one(pa100k) -> None:
    import dataclasses

    from plipbench.evaluation.protocols.recipe_run import wants_recipe
    from plipbench.evaluation.tasks import TaskRegistry

    registry = TaskRegistry()
    runs = {task.name: protocols for task, protocols in registry.suite_runs("paper") if task.kind == "attributes"}
    assert {name for name, protocols in runs.items() if "fine-tune" in protocols} == {"pa100k", "peta", "rapv1"}
    backbone = image_only_backbone()
    twin = make_context(ATTRIBUTE_TASK, "fine-tune", pa100k, backbone, real_store(backbone), {})
    assert not wants_recipe(twin)  # the mini suite's short hand-written fine-tune, unchanged
    for name in runs:
        task = registry.get(name)
        assert not task.synthetic and wants_recipe(dataclasses.replace(twin, task=task, options={})), name
