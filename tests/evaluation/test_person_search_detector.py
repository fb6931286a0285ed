"""The detector fine-tune for person search: the OIM loss and its table/queue updates by hand, and a CPU smoke run
(a few steps of Faster R-CNN + OIM on a tiny synthetic CUHK-SYSU twin) scored on its own detections."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols.person_search_detector import DetectorFineTuneOptions, OIMLoss
from plipbench.evaluation.protocols.registry import protocol_entry
from plipbench.evaluation.results import load_results
from plipbench.evaluation.runner import evaluate
from plipbench.evaluation.tasks import TaskRegistry


def test_oim_loss_and_updates_by_hand() -> None:
    holder = torch.nn.Module()
    oim = OIMLoss(holder, num_pids=2, queue_size=2, dim=2, scalar=10.0, momentum=0.5)
    holder.oim_lut.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    features = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, -1.0]], requires_grad=True)
    pids = torch.tensor([0, 1, -1])
    loss = oim(features, pids)
    # logits against [lut; empty queue]: rows 0 and 1 are labelled
    l0 = torch.tensor([10.0, 0.0, 0.0, 0.0])
    l1 = torch.tensor([6.0, 8.0, 0.0, 0.0])
    expected = (-(torch.log_softmax(l0, 0)[0]) - torch.log_softmax(l1, 0)[1]) / 2
    assert loss.item() == pytest.approx(float(expected), rel=1e-6)
    loss.backward()
    assert features.grad is not None and float(features.grad[2].abs().sum()) == 0.0  # unlabelled: no CE term
    # the table: row 1 moved half-way to (0.6, 0.8), renormalised; row 0 unchanged in direction
    row = np.array([0.3, 0.9]) / math.hypot(0.3, 0.9)
    assert holder.oim_lut[1].tolist() == pytest.approx(row.tolist(), rel=1e-6)
    assert holder.oim_lut[0].tolist() == pytest.approx([1.0, 0.0])
    # the queue: the unlabelled feature entered at the head, which moved on
    assert holder.oim_queue[0].tolist() == [0.0, -1.0] and int(holder.oim_head) == 1
    oim(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([-1, -1]))
    assert holder.oim_queue[1].tolist() == [1.0, 0.0] and int(holder.oim_head) == 1  # wrapped round: 2 % 2 = 0, then 1


def test_registered_with_typed_options() -> None:
    entry = protocol_entry("person-search", "detector-fine-tune")
    assert entry.trains and entry.options is DetectorFineTuneOptions
    assert entry.defaults()["lr"] == 0.003 and entry.defaults()["batch_size"] == 5  # SeqNet's
    with pytest.raises(ConfigError, match="oim_scalar"):
        entry.validate({"oim_scalar": -1.0}, "here")


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tasks"
    root.mkdir()
    spec = {"name": "tiny-cuhk-sysu", "kind": "person-search", "family": "person-search", "synthetic": True,
            "dataset": {"layout": "cuhk-sysu", "synthetic": {"preset": "synth-cuhk-sysu", "identities": 12,
                                                             "images_per_id": 2},
                        "options": {"gallery_size": 50}},
            "protocols": ["gt-boxes", {"name": "detector-fine-tune", "base": "detector-fine-tune",
                                       "options": {"epochs": 1, "max_steps": 3, "batch_size": 2, "min_size": 192,
                                                   "max_size": 384, "oim_queue_size": 16}}],
            "metric_options": {"det_thresh": 0.0}, "main_score": "mAP"}
    (root / "tiny-cuhk-sysu.yaml").write_text(yaml.safe_dump(spec))
    return TaskRegistry(root)


@pytest.mark.slow
def test_detector_fine_tune_smoke(tasks, tmp_path) -> None:
    out = tmp_path / "results"
    frame = evaluate("random:plip-mini", tasks="tiny-cuhk-sysu", protocols=["detector-fine-tune"], out=out,
                     registry=tasks, progress=False, seed=0)
    assert list(frame.status) == ["done"]
    (result,) = load_results(out)
    assert result.seed == 0 and set(result.scores) == {"mAP", "R@1", "R@5", "R@10"}
    assert all(0.0 <= v <= 1.0 for v in result.scores.values())
    assert result.details["steps"] == 3 and len(result.details["curve"]) == 1
    losses = result.details["curve"][0]["loss"]
    assert set(losses) == {"rpn_cls", "rpn_box", "det_cls", "det_box", "oim"}
    assert all(math.isfinite(v) for v in losses.values())
    assert result.details["gallery_detections"] > 0  # scored on its own detections, not the annotated boxes
    assert result.provenance.protocol_options["detections"].startswith("trained Faster R-CNN")
    pq = result.per_query_arrays()
    assert len(pq["AP"]) == result.details["num_queries"] > 0


def test_a_backbone_without_scene_sized_maps_is_refused_in_one_line() -> None:
    from plipbench.evaluation.protocols.person_search_detector import _dense_body
    from plipbench.models.registry import create_backbone

    vit = create_backbone("timm:vit_tiny_patch16_224", pretrained=False)  # fixed 14 x 14 position embedding
    with pytest.raises(ConfigError, match=r"dense map at scene sizes.*native 224x224") as err:
        _dense_body(vit, [-1])
    assert "\n" not in str(err.value)
    body = _dense_body(create_backbone("timm:resnet18", pretrained=False), [-1])
    assert body.out_channels == 512 and set(body(torch.zeros(1, 3, 96, 160))) == {"0"}
