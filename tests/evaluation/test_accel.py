"""Fast fine-tunes (``plipbench.evaluation.protocols.accel``): option resolution, autocast, the GradScaler path,
channels_last, compile, the accelerated loader, and the scaler's state in the checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import accel as accel_module
from plipbench.evaluation.protocols._training import training_loader
from plipbench.evaluation.protocols.accel import Acceleration, accelerated_loader, resolve_acceleration
from plipbench.evaluation.protocols.loop import _scaled_step, fine_tune_loop
from plipbench.evaluation.resume import FineTuneCheckpoint


# -- a tiny fine-tune: 24 images of 4 classes, batches of 8, a small CNN with BN ----------------------------
class ToyImages(torch.utils.data.Dataset):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(24, 3, 16, 12, generator=generator)
        self.labels = [i % 4 for i in range(24)]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index: int):
        # an epoch-dependent augmentation, so a worker that misses set_epoch gives other images
        flip = (self.epoch + index) % 2 == 1
        image = self.images[index].flip(-1) if flip else self.images[index]
        return image + 0.01 * self.epoch, "", self.labels[index], index


class ToySampler:
    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = torch.randperm(24, generator=torch.Generator().manual_seed(self.epoch)).tolist()
        return iter([order[i:i + 8] for i in range(0, 24, 8)])

    def __len__(self) -> int:
        return 3


def toy_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))


def run(accel=None, *, epochs=2, checkpoint=None, clip=None, model=None):
    torch.set_num_threads(1)
    model = model or toy_cnn()
    if accel is not None:
        accel.prepare(model)
    dataset, sampler = ToyImages(), ToySampler()
    loader = training_loader(dataset, sampler)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    def step(batch):
        images, _, labels = batch
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        return loss, {"ce": loss}, 1

    record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=epochs, max_steps=None,
                            train_modules=[model], step=step, clip_grad_norm=clip, checkpoint=checkpoint,
                            accel=accel)
    return record, {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- resolution ----------------------------------------------------------------------------------------------
def test_cpu_defaults_are_plain_fp32() -> None:
    for options in ({}, {"autocast": "auto"}, {"autocast": "recipe", "channels_last": "auto"}):
        accel = resolve_acceleration(options, "cpu", architecture="cnn", recipe_precision="amp")
        assert accel.is_default and accel.precision == "fp32" and accel.scaler() is None
        assert accel.loader_kwargs() == {"num_workers": 0, "pin_memory": False}
    details = resolve_acceleration({"autocast": "auto"}, "cpu").details()
    assert details["precision"] == "fp32" and details["precision_requested"] == "auto"
    assert details["autocast_dtype"] is None and details["compile"] is False


def test_cpu_bf16_when_asked_and_workers() -> None:
    accel = resolve_acceleration({"autocast": "bf16", "num_workers": 2, "compile": True}, "cpu")
    assert accel.precision == "bf16" and accel.autocast_dtype == torch.bfloat16 and not accel.grad_scaler
    assert accel.loader_kwargs() == {"num_workers": 2, "pin_memory": False, "persistent_workers": True}
    assert accel.details()["autocast_dtype"] == "bfloat16" and accel.details()["compile"] == "inductor"


@pytest.mark.parametrize("supports_bf16, expected", [(True, "bf16"), (False, "fp16")])
def test_cuda_auto_prefers_bf16_else_fp16_with_a_scaler(monkeypatch, supports_bf16, expected) -> None:
    monkeypatch.setattr(accel_module, "_bf16_supported", lambda device: supports_bf16)
    for options in ({"autocast": "auto"}, {"autocast": "recipe"}):
        accel = resolve_acceleration(options, "cuda:0", architecture="cnn", recipe_precision="amp")
        assert accel.precision == expected and accel.grad_scaler == (expected == "fp16")
        assert accel.channels_last and accel.pin_memory and accel.device_type == "cuda"
    assert not resolve_acceleration({}, "cuda", architecture="vit").channels_last
    assert resolve_acceleration({"autocast": "recipe"}, "cuda", recipe_precision="fp32").precision == "fp32"


@pytest.mark.parametrize("options, device, needle", [
    ({"autocast": "fp8"}, "cpu", "'fp32', 'bf16', 'fp16', 'auto', 'recipe'"),
    ({"autocast": "fp16"}, "cpu", "fp16 needs a CUDA device"),
    ({"autocast": "recipe"}, "cpu", "'recipe' needs a recipe"),
    ({"channels_last": "yes"}, "cpu", "'auto', true, false"),
    ({"channels_last": 1}, "cpu", "'auto', true, false"),
    ({"channels_last": True}, "cpu", "CNN backbones, not to a vit"),
    ({"compile": "yes"}, "cpu", "'compile' expects true or false"),
    ({"num_workers": -1}, "cpu", "'num_workers' expects an integer >= 0"),
    ({}, "mps", "cpu and cuda"),
])
def test_bad_options_are_one_line_config_errors(options, device, needle) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_acceleration(options, device, architecture="vit", where="task t")
    assert needle in str(err.value) and "\n" not in str(err.value) and str(err.value).startswith("task t: ")


def test_cuda_bf16_refused_where_unsupported(monkeypatch) -> None:
    monkeypatch.setattr(accel_module, "_bf16_supported", lambda device: False)
    with pytest.raises(ConfigError, match="does not support bf16"):
        resolve_acceleration({"autocast": "bf16"}, "cuda")


# -- the loop ------------------------------------------------------------------------------------------------
def test_default_acceleration_equals_no_acceleration_exactly() -> None:
    plain_record, plain = run(None)
    record, state = run(resolve_acceleration({}, "cpu", architecture="cnn"))
    assert same_state(plain, state) and record.losses == plain_record.losses


def test_cpu_bf16_autocast_is_close_to_fp32_but_not_equal() -> None:
    fp32, fp32_state = run(None)
    bf16, bf16_state = run(resolve_acceleration({"autocast": "bf16"}, "cpu"))
    a, b = [e["ce"] for e in fp32.losses], [e["ce"] for e in bf16.losses]
    assert a != b and a == pytest.approx(b, rel=3e-2)
    assert all(v.dtype == fp32_state[k].dtype for k, v in bf16_state.items())  # the weights stay fp32


def test_autocast_runs_the_step_in_bf16() -> None:
    seen = []
    model = torch.nn.Linear(4, 2)
    model.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with Acceleration(precision="bf16").autocast():
        model(torch.randn(3, 4))
    with Acceleration().autocast():
        model(torch.randn(3, 4))
    assert seen == [torch.bfloat16, torch.float32]


def test_channels_last_on_a_cnn_weights_and_input() -> None:
    model = toy_cnn()
    Acceleration(channels_last=True).prepare(model)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[3].weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    model[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    model(torch.randn(2, 3, 16, 12))
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert Acceleration(channels_last=True).prepare_input(torch.randn(2, 3, 4, 4)).is_contiguous(
        memory_format=torch.channels_last)
    off = toy_cnn()
    Acceleration().prepare(off)
    assert not off[0].weight.is_contiguous(memory_format=torch.channels_last)
    # a CPU run in channels_last trains to nearly the same losses
    plain, _ = run(None)
    nhwc, _ = run(Acceleration(channels_last=True))
    assert [e["ce"] for e in nhwc.losses] == pytest.approx([e["ce"] for e in plain.losses], rel=1e-4)


def test_grad_scaler_path_with_fp32_equals_the_plain_loop() -> None:
    # a power-of-two loss scale is exact in fp32: scaled backward, unscale, clip and step give the same numbers
    plain_record, plain = run(None, clip=0.5)
    record, state = run(Acceleration(grad_scaler=True), clip=0.5)
    assert same_state(plain, state) and record.losses == plain_record.losses


def test_scaled_step_skips_non_finite_gradients_and_backs_off() -> None:
    model = torch.nn.Linear(3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = Acceleration(grad_scaler=True).scaler()
    loss = model(torch.randn(4, 3)).sum() * float("inf")
    _scaled_step(scaler, loss, optimizer, list(model.parameters()), 1.0)
    assert same_state(before, model.state_dict()) and scaler.get_scale() == 2.0**15
    optimizer.zero_grad(set_to_none=True)
    _scaled_step(scaler, model(torch.randn(4, 3)).sum(), optimizer, list(model.parameters()), 1.0)
    assert not torch.equal(before["weight"], model.weight)


class GrowingScaler(Acceleration):
    """A scaler whose scale doubles every step, so its state differs from epoch to epoch."""

    made: list = []

    def scaler(self):
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4, growth_interval=1)
        GrowingScaler.made.append(scaler)
        return scaler


def test_checkpoint_round_trip_restores_the_scaler_and_resumes_exactly(tmp_path) -> None:
    accel = GrowingScaler(grad_scaler=True)
    whole, whole_state = run(accel, epochs=3)
    assert GrowingScaler.made[-1].get_scale() == 2.0 ** (4 + 9)  # 9 steps without overflow
    folder = tmp_path / "ckpt"
    run(accel, epochs=2, checkpoint=FineTuneCheckpoint(folder, {"run": 1}, resume=False))
    saved = json.loads((folder / "state.json").read_text())["grad_scaler"]
    assert saved["scale"] == 2.0 ** (4 + 6) and saved["growth_interval"] == 1
    resumed, resumed_state = run(accel, epochs=3, checkpoint=FineTuneCheckpoint(folder, {"run": 1}, resume=True))
    assert GrowingScaler.made[-1].get_scale() == 2.0 ** (4 + 9)  # restored at 2**10, then 3 more steps
    assert same_state(whole_state, resumed_state) and resumed.losses == whole.losses


def test_compile_wraps_the_step() -> None:
    graphs = []

    def counting_backend(graph_module, example_inputs):  # dynamo hands every captured graph to the backend
        graphs.append(graph_module)
        return graph_module.forward

    plain_record, plain = run(None, epochs=1)
    record, state = run(Acceleration(compile=True, compile_backend=counting_backend), epochs=1)
    assert graphs  # the step was traced
    assert [e["ce"] for e in record.losses] == pytest.approx([e["ce"] for e in plain_record.losses], rel=1e-5)
    assert all(torch.allclose(plain[k].float(), state[k].float(), atol=1e-5) for k in plain)


# -- the loader ----------------------------------------------------------------------------------------------
def batches_of(loader, dataset, sampler, epochs=2):
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        out.extend(loader)
    return out


def test_accelerated_loader_matches_the_plain_loader_with_persistent_workers() -> None:
    dataset, sampler = ToyImages(), ToySampler()
    plain = batches_of(training_loader(dataset, sampler), dataset, sampler)
    same = batches_of(accelerated_loader(dataset, sampler), dataset, sampler)
    loader = accelerated_loader(dataset, sampler, Acceleration(num_workers=1, persistent_workers=True))
    assert loader.persistent_workers and len(loader) == 3
    workers = batches_of(loader, dataset, sampler)
    for got in (same, workers):
        assert len(got) == len(plain) == 6
        for (a_images, _, a_labels), (b_images, _, b_labels) in zip(plain, got, strict=True):
            assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)
