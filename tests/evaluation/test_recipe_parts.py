"""The model parts of the image ReID recipe fine-tune: BoT's centre loss with its own optimizer (value, update,
a tiny run, exact resume), and a ViT trained at the recipe's size with its position embedding resampled and
drop path set (TransReID)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from protocol_fixtures import (
    IMAGE_TASK,
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
from plipbench.evaluation.protocols.losses import CenterLoss, CenterSGD
from plipbench.evaluation.resume import FineTuneCheckpoint

CENTER = {"recipe": "bot", "epochs": 2, "warmup_epochs": 0, "schedule.milestones": [1], "batch_size": 16,
          "input_size": "native", "losses.center.enabled": True}


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-market", "market1501", 12, 4)


def _run(market, options, backbone=None, checkpoint=None):
    torch.set_num_threads(1)
    backbone = backbone or image_only_backbone()
    ctx = make_context(IMAGE_TASK, "fine-tune", task_data(market, val=False), backbone, real_store(backbone),
                       options)
    ctx.checkpoint = checkpoint
    return get_protocol("image-reid", "fine-tune")(ctx)


# -- centre loss --------------------------------------------------------------------------------------------
def test_center_loss_on_a_hand_computed_case():
    loss = CenterLoss(num_classes=2, dim=2)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    labels = torch.tensor([0, 1, 0])
    # ||(1,0)-(0,0)||^2 = 1, ||(0,2)-(1,1)||^2 = 2, ||(3,4)-(0,0)||^2 = 25; mean over the batch of 3
    assert math.isclose(float(loss(features, labels).detach()), 28 / 3, rel_tol=1e-6)


def _reference_center_loss(x, labels, centers):
    """reid-strong-baseline layers/center_loss.py CenterLoss.forward, transcribed."""
    batch, classes = x.size(0), centers.size(0)
    distmat = (x.pow(2).sum(dim=1, keepdim=True).expand(batch, classes)
               + centers.pow(2).sum(dim=1, keepdim=True).expand(classes, batch).t())
    distmat = distmat - 2 * x @ centers.t()
    mask = labels.unsqueeze(1).expand(batch, classes).eq(torch.arange(classes).expand(batch, classes))
    return (distmat * mask.float()).clamp(min=1e-12, max=1e12).sum() / batch


def test_center_loss_matches_bot_and_its_sgd_divides_the_gradient_by_the_weight():
    torch.manual_seed(0)
    loss = CenterLoss(num_classes=4, dim=8)
    x, labels = torch.randn(6, 8), torch.tensor([0, 0, 1, 1, 3, 3])
    reference = _reference_center_loss(x, labels, loss.centers.detach())
    # BoT's masked matrix adds (classes - 1) * 1e-12 per sample, which is left out
    assert math.isclose(float(loss(x, labels).detach()), float(reference), rel_tol=1e-5)
    weight, lr = 5e-4, 0.5
    before = loss.centers.detach().clone()
    optimizer = CenterSGD(loss.parameters(), lr=lr, loss_weight=weight)
    optimizer.zero_grad()
    (weight * loss(x, labels)).backward()
    optimizer.step()
    # the centres move by lr x the unweighted gradient: c_j -= lr * (-2 / B) * sum_{y_i = j} (x_i - c_j)
    expected = before.clone()
    for j in range(4):
        members = x[labels == j]
        expected[j] -= lr * (-2 / len(x)) * (members - before[j]).sum(dim=0)
    torch.testing.assert_close(loss.centers.detach(), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(loss.centers[2].detach(), before[2])  # an identity absent from the batch stays put


def test_bot_with_center_loss_runs_and_records_it(market):
    backbone = image_only_backbone()
    before = state_snapshot(backbone)
    out = _run(market, {**CENTER, "max_steps": 3})
    assert_state_unchanged(backbone, before)
    details = out.details
    assert details["recipe"]["recipe"]["losses"]["center"]["enabled"] is True
    assert set(details["train_loss"][0]) == {"id", "triplet", "center"}
    assert details["train_loss"][0]["center"] > 0
    assert details["center_loss"]["weight"] == 5e-4 and details["center_loss"]["lr"] == 0.5
    assert details["center_loss"]["centers"] == [details["num_train_identities"], backbone.embedding_dim]
    assert details["drop_path"]["applied"] is False and details["position_embedding"] == "n/a (cnn)"
    assert 0.0 <= out.scores["mAP"] <= 1.0
    without = _run(market, {**CENTER, "max_steps": 3, "losses.center.enabled": False})
    assert without.details["center_loss"] == "off" and "center" not in without.details["train_loss"][0]




def test_resume_with_the_center_optimizer_is_exact(market, tmp_path):
    options = {**CENTER, "epochs": 3, "schedule.milestones": [2]}
    spec = {"kind": "image-reid", "center": True}
    full = _run(market, options)
    with pytest.raises(Killed):
        _run(market, options, checkpoint=DiesAfter(tmp_path / "ckpt", spec, resume=False, after=0))
    state = (tmp_path / "ckpt" / "state.json").read_text()
    assert '"extra_optimizers"' in state  # the centre SGD's state is in the checkpoint
    torch.rand(5), np.random.rand(2)  # numbers drawn in between do not matter
    checkpoint = FineTuneCheckpoint(tmp_path / "ckpt", spec, resume=True)
    resumed = _run(market, options, checkpoint=checkpoint)
    assert checkpoint.resumed_after == 1
    assert resumed.scores == full.scores
    assert resumed.details["curve"] == full.details["curve"] and len(full.details["curve"]) == 3
    for key in full.per_query:
        assert np.array_equal(np.asarray(full.per_query[key]), np.asarray(resumed.per_query[key])), key


# -- a ViT at the recipe's size -----------------------------------------------------------------------------
def _tiny_vit():
    from timm.models.vision_transformer import VisionTransformer

    from plipbench.models import BackboneMetadata, ImageTransform, ModuleBackbone

    torch.manual_seed(0)
    module = VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0,
                               num_classes=0)
    meta = BackboneMetadata(name="tiny-vit", family="test", embedding_dim=32,
                            num_parameters=sum(p.numel() for p in module.parameters()))
    return ModuleBackbone(module, meta, ImageTransform(size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3))


VIT = {"recipe": "reference", "epochs": 1, "warmup_epochs": 0, "batch_size": 16, "input.size": [64, 32],
       "max_steps": 2}


def test_transreid_resamples_a_vit_to_the_recipe_size_and_sets_drop_path(market):
    backbone = _tiny_vit()
    before = state_snapshot(backbone)
    out = _run(market, VIT, backbone=backbone)
    assert_state_unchanged(backbone, before)  # the resampling and drop path edit the training copy only
    assert tuple(backbone.module.patch_embed.img_size) == (32, 32)
    details = out.details
    assert details["recipe"]["name"] == "transreid" and out.options["input_size"] == "recipe"
    position = details["position_embedding"]
    assert position["old_grid"] == [2, 2] and position["new_grid"] == [4, 2] and position["resampled"]
    assert position["interpolation"] == "bilinear" and position["input_size"] == [64, 32]
    assert details["drop_path"]["applied"] and details["drop_path"]["rates"] == pytest.approx([0.0, 0.05, 0.1])
    assert details["test_features"].endswith("at [64, 32]")
    assert details["center_loss"] == "off" and 0.0 <= out.scores["mAP"] <= 1.0


def test_a_vit_at_another_size_without_resampling_is_refused(market):
    with pytest.raises(ConfigError, match="position_embedding.resample off; set position_embedding.resample=true "
                                          "or input_size=native"):
        _run(market, {**VIT, "position_embedding.resample": False}, backbone=_tiny_vit())
    with pytest.raises(ConfigError, match="not a multiple of the patch size"):
        _run(market, {**VIT, "input.size": [72, 32]}, backbone=_tiny_vit())


# -- the loop's extra optimizers ----------------------------------------------------------------------------
class _Epochs:
    """A sampler / dataset stand-in: fixed batches, ``set_epoch`` a no-op."""

    def __init__(self, batches):
        self.batches = batches

    def set_epoch(self, epoch):
        pass

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def _loop_run(checkpoint=None):
    from plipbench.evaluation.protocols.loop import fine_tune_loop

    torch.manual_seed(0)
    model, extra = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    batches = _Epochs([(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(2)])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    extra_optimizer = torch.optim.SGD(extra.parameters(), lr=0.1, momentum=0.9)  # stateful: momentum buffers
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    def step(batch):
        x, y = batch
        loss = (extra(model(x)) - y).pow(2).mean()
        return loss, {"loss": loss}, 1

    fine_tune_loop(batches, batches, batches, optimizer, scheduler, epochs=3, max_steps=None,
                   train_modules=[model, extra], step=step, checkpoint=checkpoint, extra_optimizers=[extra_optimizer])
    return model, extra


def test_extra_optimizers_step_and_resume_exactly(tmp_path):
    from safetensors.torch import load_file

    model, extra = _loop_run()
    spec = {"kind": "loop"}
    with pytest.raises(Killed):
        _loop_run(DiesAfter(tmp_path / "ckpt", spec, resume=False, after=0))
    tensors = load_file(next((tmp_path / "ckpt").glob("*.safetensors")))
    assert any(k.startswith("extra_optimizer.0.optimizer.") and k.endswith("momentum_buffer") for k in tensors)
    resumed_model, resumed_extra = _loop_run(FineTuneCheckpoint(tmp_path / "ckpt", spec, resume=True))
    assert torch.equal(resumed_model.weight, model.weight) and torch.equal(resumed_extra.weight, extra.weight)


# -- acceleration in a recipe run ---------------------------------------------------------------------------
def test_a_recipe_run_records_its_acceleration_and_cpu_bf16_moves_the_numbers(market):
    plain = _run(market, {**CENTER, "max_steps": 2})
    accel = plain.details["acceleration"]
    assert accel["precision"] == "fp32" and accel["precision_requested"] == "recipe"  # bot is fp32; CPU anyway
    assert accel["channels_last"] is False and accel["compile"] is False
    again = _run(market, {**CENTER, "max_steps": 2, "autocast": "fp32"})
    assert again.scores == plain.scores  # the default on CPU is the plain fp32 loop
    bf16 = _run(market, {**CENTER, "max_steps": 2, "autocast": "bf16"})
    assert bf16.details["acceleration"]["precision"] == "bf16"
    assert bf16.details["train_loss"] != plain.details["train_loss"]  # autocast really ran
    with pytest.raises(ConfigError, match="option 'autocast'.*fp16 needs a CUDA device"):
        _run(market, {**CENTER, "max_steps": 1, "autocast": "fp16"})


def test_image_reid_recipe_with_ema_tests_the_averaged_weights(market):
    plain = _run(market, {**CENTER, "max_steps": 3, "losses.center.enabled": False})
    averaged = _run(market, {**CENTER, "max_steps": 3, "losses.center.enabled": False,
                             "ema": {"decay": 0.5, "evaluate_ema": True}})
    assert plain.details["ema"] is None and averaged.details["ema"] == {"decay": 0.5, "evaluate_ema": True}
    assert averaged.details["train_loss"] == plain.details["train_loss"]  # the same training
    assert averaged.scores != plain.scores  # but the test features come from the EMA weights


def test_stop_after_trains_the_first_epochs_only(market) -> None:
    """``stop_after 1`` of a 3-epoch recipe: one epoch trained (the curve), the result marked short."""
    out = _run(market, {"recipe": "bot", "epochs": 3, "warmup_epochs": 0, "schedule.milestones": [2],
                        "stop_after": 1, "batch_size": 16, "input_size": "native"})
    assert len(out.details["curve"]) == 1
    assert out.details["short_run"] and out.details["recipe"]["recipe"]["stop_after"] == 1
