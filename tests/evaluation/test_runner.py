from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import yaml
from runner_fixtures import write_tiny_tasks

from plipbench.errors import DataError, PlipbenchError
from plipbench.evaluation import protocols as protocol_registry
from plipbench.evaluation.protocols.base import ProtocolOutput
from plipbench.evaluation.results import TaskResult, load_results
from plipbench.evaluation.runner import dataset_fingerprint, evaluate
from plipbench.evaluation.tasks import TaskRegistry

CALLS: list[tuple[str, str, int]] = []


def stub_protocol(ctx) -> ProtocolOutput:
    """Counts what it is given; uses the feature store so that caching is exercised."""
    records = ctx.data.test_records or ctx.data.gallery_records
    features = ctx.features.image_features(records)
    CALLS.append((ctx.task.name, ctx.protocol.name, len(ctx.data.train_records)))
    ap = np.linspace(0.2, 0.8, len(records))
    return ProtocolOutput(
        scores={ctx.task.main_score: float(ap.mean()), "dim": float(features.shape[1]) / 1000},
        per_query={"AP": ap}, details={"n": len(records)}, options={"stub": True}, selection_split=None,
        zero_shot=True,
    )


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    for key in list(protocol_registry.PROTOCOLS):
        monkeypatch.setitem(protocol_registry.PROTOCOLS, key,
                            dataclasses.replace(protocol_registry.PROTOCOLS[key], target="test_runner:stub_protocol"))
    CALLS.clear()
    return TaskRegistry(write_tiny_tasks(tmp_path / "tasks", real_root=tmp_path / "absent"))


def test_suite_runs_writes_results_with_provenance_and_skips_absent_data(tiny, tmp_path) -> None:
    out = tmp_path / "results"
    frame = evaluate("random:plip-mini", suite="tiny", out=out, registry=tiny, progress=False)
    status = dict(zip(frame.task + "/" + frame.protocol, frame.status, strict=True))
    assert status == {"tiny-text/zero-shot": "done", "tiny-text/zero-shot-half": "done",
                      "tiny-image/zero-shot": "done", "real-text/zero-shot": "skipped"}
    reason = frame.loc[frame.task == "real-text", "reason"].item()
    assert "CUHK-PEDES" in reason and "not found" in reason
    results = load_results(out)
    assert len(results) == 3
    r = next(x for x in results if x.task == "tiny-image")
    p = r.provenance
    assert p.plipbench_version and p.task_spec_hash == tiny.get("tiny-image").spec_hash()
    assert len(p.dataset_fingerprint) == 64 and p.backbone["name"] == "random:plip-mini"
    assert p.protocol_options["stub"] is True and p.protocol_options["base"] == "zero-shot"
    assert p.seeds == {} and p.hardware["cpu_count"] >= 1  # a zero-shot run of fixed weights: no seed
    assert {"features_s", "total_s"} <= set(p.timings)
    assert r.per_query_arrays()["AP"].mean() == pytest.approx(r.scores["mAP"])
    # few-shot: half of the training identities
    full = [n for t, p_, n in CALLS if p_ == "zero-shot" and t == "tiny-text"][0]
    half = [n for t, p_, n in CALLS if p_ == "zero-shot-half"][0]
    assert 0 < half < full


def test_rerun_reuses_results_and_feature_cache(tiny, tmp_path) -> None:
    out = tmp_path / "results"
    first = evaluate("random:plip-mini", tasks="tiny-image", out=out, registry=tiny, progress=False)
    assert first.attrs["feature_cache"]["misses"] == 1
    stamp = (out / TaskResult.load(next(out.glob("*.json"))).file_name()).stat().st_mtime_ns
    again = evaluate("random:plip-mini", tasks="tiny-image", out=out, registry=tiny, progress=False)
    assert list(again.status) == ["cached"] and len(CALLS) == 1
    assert next(out.glob("*.json")).stat().st_mtime_ns == stamp
    forced = evaluate("random:plip-mini", tasks="tiny-image", out=out, registry=tiny, overwrite=True, progress=False)
    assert list(forced.status) == ["done"]
    assert forced.attrs["feature_cache"] == {**forced.attrs["feature_cache"], "hits": 1, "misses": 0}


def test_stored_result_of_other_weights_under_the_same_name_is_recomputed(tiny, tmp_path) -> None:
    from plipbench.models import create_backbone

    out = tmp_path / "results"
    old, new = create_backbone("random:plip-mini", seed=0), create_backbone("random:plip-mini", seed=1)
    assert old.fingerprint != new.fingerprint
    evaluate(old, tasks="tiny-image", name="mine", out=out, registry=tiny, progress=False)
    again = evaluate(new, tasks="tiny-image", name="mine", out=out, registry=tiny, progress=False)
    assert list(again.status) == ["done"] and len(CALLS) == 2  # re-trained weights: not the stale file
    (path,) = out.glob("*.json")
    assert TaskResult.load(path).provenance.backbone["fingerprint"] == new.fingerprint
    assert list(evaluate(new, tasks="tiny-image", name="mine", out=out, registry=tiny,
                         progress=False).status) == ["cached"]
    # an edited task spec invalidates it too
    spec = tmp_path / "tasks" / "tiny-image.yaml"
    tree = yaml.safe_load(spec.read_text())
    tree["description"] = "edited"
    spec.write_text(yaml.safe_dump(tree))
    edited = TaskRegistry(tmp_path / "tasks")
    assert edited.get("tiny-image").spec_hash() != tiny.get("tiny-image").spec_hash()
    rerun = evaluate(new, tasks="tiny-image", name="mine", out=out, registry=edited, progress=False)
    assert list(rerun.status) == ["done"]


def test_absent_real_task_alone_is_an_error(tiny, tmp_path) -> None:
    with pytest.raises(DataError, match="CUHK-PEDES.*not found"):
        evaluate("random:plip-mini", tasks="real-text", out=tmp_path / "r", registry=tiny, progress=False)


def test_text_task_on_image_only_backbone(tiny, tmp_path) -> None:
    with pytest.raises(PlipbenchError, match="has no text encoder"):
        evaluate("random:timm/resnet18", tasks="tiny-text", out=tmp_path / "r", registry=tiny, progress=False)
    frame = evaluate("random:timm/resnet18", suite="tiny", out=tmp_path / "r", registry=tiny, progress=False)
    assert set(frame.loc[frame.task == "tiny-text", "status"]) == {"skipped"}
    assert list(frame.loc[frame.task == "tiny-image", "status"]) == ["done"]


def test_dataset_fingerprint_changes_with_content(tiny) -> None:
    from plipbench.data.readers import read_dataset
    from plipbench.evaluation.tasks import resolve_dataset

    ref = tiny.get("tiny-text").dataset
    dataset = read_dataset("cuhk-pedes", resolve_dataset(ref))
    before = dataset_fingerprint(dataset)
    assert dataset_fingerprint(dataset) == before
    dataset.records[0] = type(dataset.records[0])(**{**dataset.records[0].__dict__, "captions": ("changed",)})
    assert dataset_fingerprint(dataset) != before


def test_result_json_is_compact_and_valid(tiny, tmp_path) -> None:
    out = tmp_path / "results"
    evaluate("random:plip-mini", tasks="tiny-image", out=out, registry=tiny, progress=False)
    raw = json.loads(next(out.glob("*.json")).read_text())
    assert raw["schema_version"] == 2 and isinstance(raw["per_query"]["AP"], str)


def test_trained_protocols_run_once_per_seed_and_zero_shot_once(tiny, tmp_path) -> None:
    out = tmp_path / "results"
    frame = evaluate("random:plip-mini", tasks="tiny-text", out=out, registry=tiny, progress=False, seeds=3)
    seeds = [None if s is None or s != s else int(s) for s in frame.seed.tolist()]
    runs = sorted(zip(frame.protocol, seeds, strict=True), key=str)
    # zero-shot on all the data is deterministic: one run, no seed; the few-shot subset is seeded
    assert runs == sorted([("zero-shot", None), ("zero-shot-half", 0), ("zero-shot-half", 1),
                           ("zero-shot-half", 2)], key=str)
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["random_plip-mini__tiny-text__zero-shot-half__seed0.json", "random_plip-mini__tiny-text__zero-shot-half__seed1.json",
                     "random_plip-mini__tiny-text__zero-shot-half__seed2.json", "random_plip-mini__tiny-text__zero-shot.json"]
    half = [TaskResult.load(out / n) for n in names[:3]]
    assert [r.seed for r in half] == [0, 1, 2] and [r.provenance.seeds for r in half] == [
        {"protocol": 0}, {"protocol": 1}, {"protocol": 2}]
    # each seed's few-shot subset is its own draw of identities
    from plipbench.data.readers import read_dataset
    from plipbench.evaluation.runner import _subset_identities
    from plipbench.evaluation.tasks import resolve_dataset

    train = read_dataset("cuhk-pedes", resolve_dataset(tiny.get("tiny-text").dataset)).split("train")
    subsets = [frozenset(r.pid for r in _subset_identities(train, 0.5, s)) for s in range(3)]
    assert len(set(subsets)) > 1
    # a pre-trained-per-seed backbone: every protocol once, with the backbone's seed
    seeded = evaluate("random:plip-mini", tasks="tiny-text", out=tmp_path / "b", registry=tiny, progress=False,
                      backbone_seed=4)
    assert [int(s) for s in seeded.seed.tolist()] == [4, 4]
    assert {TaskResult.load(p).provenance.seeds["pretraining"] for p in (tmp_path / "b").glob("*.json")} == {4}


def test_bad_options_are_refused_before_any_work(tiny, tmp_path) -> None:
    from plipbench.errors import ConfigError

    # real-text's data is absent: the option error comes first, before the data or the backbone is looked at
    with pytest.raises(ConfigError, match=r"task real-text, protocol zero-shot \(text-reid zero-shot\): unknown "
                                          r"option 'epochs'; known options: directions"):
        evaluate("random:plip-mini", tasks="real-text", out=tmp_path / "r", registry=tiny, progress=False,
                 options={"epochs": 3})
    assert not CALLS and not (tmp_path / "r").exists()


def test_bad_seed_counts_are_refused(tiny, tmp_path) -> None:
    from plipbench.errors import ConfigError

    for bad in (0, -2, 1.5, "3"):
        with pytest.raises(ConfigError, match="--seeds must be a whole number >= 1"):
            evaluate("random:plip-mini", tasks="tiny-image", out=tmp_path / "r", registry=tiny, progress=False,
                     seeds=bad)


def test_stored_result_is_recomputed_when_the_dataset_changes(tiny, tmp_path) -> None:
    from plipbench.evaluation.tasks import resolve_dataset

    out = tmp_path / "results"
    evaluate("random:plip-mini", tasks="tiny-image", out=out, registry=tiny, progress=False)
    root = resolve_dataset(tiny.get("tiny-image").dataset)
    victims = sorted((root / "query").glob("*.jpg"))[:3]
    assert victims
    for path in victims:
        path.unlink()
    again = evaluate("random:plip-mini", tasks="tiny-image", out=out, registry=tiny, progress=False)
    assert list(again.status) == ["done"]  # not the stale number of the old data
    (path,) = out.glob("*.json")
    assert TaskResult.load(path).details["n"] < 10_000
    assert list(evaluate("random:plip-mini", tasks="tiny-image", out=out, registry=tiny,
                         progress=False).status) == ["cached"]


CHILD = """
import dataclasses, sys, time
from plipbench.evaluation import protocols as registry_module
from plipbench.evaluation.runner import evaluate
from plipbench.evaluation.tasks import TaskRegistry
import test_runner

def slow(ctx):
    time.sleep(2.0)  # long enough that the second process arrives while the first computes
    return test_runner.stub_protocol(ctx)

test_runner.slow = slow
for key in list(registry_module.PROTOCOLS):
    registry_module.PROTOCOLS[key] = dataclasses.replace(registry_module.PROTOCOLS[key], target="test_runner:slow")
frame = evaluate("random:plip-mini", tasks="tiny-image", out=sys.argv[2], registry=TaskRegistry(sys.argv[1]),
                 progress=False)
print("STATUS", *frame.status)
"""


def test_two_processes_on_one_output_compute_once(tiny, tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from plipbench.evaluation.tasks import resolve_dataset

    resolve_dataset(tiny.get("tiny-image").dataset)  # generate the twin first: the race is on the result
    env = {**os.environ, "PLIPBENCH_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", CHILD, str(tmp_path / "tasks"), str(tmp_path / "results")]
    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    statuses = sorted(line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("STATUS"))
    assert statuses == ["cached", "done"]
