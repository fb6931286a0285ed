"""The occluded / partial ReID and zero-shot attribute twins run end to end through the real protocols (toy sizes)."""

from __future__ import annotations

import pytest
import yaml

from plipbench.evaluation.runner import evaluate
from plipbench.evaluation.tasks import TaskRegistry

REID = {"metric": "cosine", "ap": "noninterp", "max_rank": 10}


def _write(root, name, tree):
    (root / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "synthetic": True, **tree}))


@pytest.mark.slow
def test_twins_run_through_the_real_protocols(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for name, preset, layout in (("tiny-occluded-reid", "synth-occluded-reid", "occluded-reid"),
                                 ("tiny-occluded-duke", "synth-occluded-duke", "occluded-duke")):
        _write(tasks, name, {"kind": "image-reid", "family": "image-reid", "splits": {"val": None},
                             "dataset": {"layout": layout, "synthetic": {"preset": preset, "identities": 9,
                                                                         "images_per_id": 4}},
                             "protocols": ["zero-shot"], "main_score": "mAP", "metric_options": REID})
    _write(tasks, "tiny-peta-zs", {"kind": "attributes", "family": "attributes",
                                   "dataset": {"layout": "peta-zs", "synthetic": {"preset": "synth-pa100k",
                                                                                  "identities": 24, "images_per_id": 2}},
                                   "protocols": ["zero-shot"], "main_score": "mA"})
    frame = evaluate("random:plip-mini", ["tiny-occluded-reid", "tiny-occluded-duke", "tiny-peta-zs"],
                     out=tmp_path / "results", registry=TaskRegistry(tasks), progress=False)
    assert list(frame.status) == ["done", "done", "done"], frame.to_dict("records")
    assert all(0.0 <= s <= 1.0 for s in frame.score)
