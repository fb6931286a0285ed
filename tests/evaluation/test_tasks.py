from __future__ import annotations

import pytest
import yaml

from plipbench.errors import ConfigError, DataError
from plipbench.evaluation.tasks import TaskRegistry, expand_path, load_task_file, resolve_dataset


def test_shipped_tasks_and_suites_validate() -> None:
    registry = TaskRegistry()
    real = {"cuhk-pedes", "icfg-pedes", "rstpreid", "market1501", "dukemtmc", "msmt17", "cuhk03-np", "pa100k", "peta",
            "rapv1", "rapv2"}
    assert real <= set(registry.tasks)
    assert {f"synth-{n}" for n in real} <= set(registry.tasks), "every real task has a synthetic twin"
    assert {"mini", "paper"} <= set(registry.suites)
    kinds = {t.kind for t, _ in registry.suite_runs("mini")}
    families = {t.family for t, _ in registry.suite_runs("mini")}
    bases = {t.protocol(p).base for t, ps in registry.suite_runs("mini") for p in ps}
    assert kinds == {"text-reid", "image-reid", "attributes"}
    assert families == {"text-reid", "image-reid", "attributes", "domain-generalization"}
    assert bases == {"zero-shot", "linear-probe", "fine-tune"}
    assert any(t.protocol(p).train_fraction < 1 for t, ps in registry.suite_runs("mini") for p in ps)
    for spec, _ in registry.suite_runs("mini"):
        assert spec.synthetic and spec.dataset.synthetic is not None


def _write(path, tree) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(tree))


BASE = {"name": "t", "kind": "text-reid", "family": "text-reid",
        "dataset": {"layout": "cuhk-pedes", "root": "/nowhere"}, "protocols": ["zero-shot"], "main_score": "R@1"}


def test_unknown_key_and_bad_protocol_are_named(tmp_path) -> None:
    _write(tmp_path / "a.yaml", BASE | {"colour": "red"})
    with pytest.raises(ConfigError, match="a.yaml: unknown key 'colour'"):
        load_task_file(tmp_path / "a.yaml")
    _write(tmp_path / "b.yaml", BASE | {"protocols": ["fine-tune", "retrain"]})
    with pytest.raises(ConfigError, match="retrain"):
        load_task_file(tmp_path / "b.yaml")
    _write(tmp_path / "c.yaml", BASE | {"family": "domain-generalization"})
    with pytest.raises(ConfigError, match="train_dataset"):
        load_task_file(tmp_path / "c.yaml")
    _write(tmp_path / "d.yaml", BASE | {"dataset": {"layout": "cuhk-pedes"}})
    with pytest.raises(ConfigError, match="exactly one of root"):
        load_task_file(tmp_path / "d.yaml")


def test_registry_rejects_duplicates_and_unknown_suite_tasks(tmp_path) -> None:
    _write(tmp_path / "a.yaml", BASE)
    _write(tmp_path / "sub" / "b.yaml", BASE)
    with pytest.raises(ConfigError, match="also defined"):
        TaskRegistry(tmp_path)
    (tmp_path / "sub" / "b.yaml").unlink()
    _write(tmp_path / "suites" / "s.yaml", {"name": "s", "tasks": ["t", "nope"]})
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        TaskRegistry(tmp_path)
    _write(tmp_path / "suites" / "s.yaml", {"name": "s", "tasks": [{"task": "t", "protocols": ["fine-tune"]}]})
    with pytest.raises(ConfigError, match="no protocol 'fine-tune'"):
        TaskRegistry(tmp_path)


def test_expand_path_defaults_and_missing_data_message(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("PLIPBENCH_DATA", raising=False)
    assert expand_path("${PLIPBENCH_DATA:-/data}/CUHK-PEDES").as_posix() == "/data/CUHK-PEDES"
    monkeypatch.setenv("PLIPBENCH_DATA", str(tmp_path))
    assert expand_path("${PLIPBENCH_DATA:-/data}/X") == tmp_path / "X"
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        expand_path("${NOT_SET_ANYWHERE}/x")
    spec = TaskRegistry().get("cuhk-pedes")
    with pytest.raises(DataError, match=f"{tmp_path}/CUHK-PEDES.*not found.*reid_raw.json|{tmp_path}/CUHK-PEDES.*not found"):
        resolve_dataset(spec.dataset)
