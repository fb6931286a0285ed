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
    assert kinds == {"text-reid", "image-reid", "attributes", "person-search"}
    assert families == {"text-reid", "image-reid", "attributes", "domain-generalization", "person-search"}
    assert bases == {"zero-shot", "linear-probe", "fine-tune", "gt-boxes"}
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


# -- task-spec problems surface when the registry loads (D21) --------------------------------------
@pytest.mark.parametrize(("change", "message"), [
    ({"metric_options": {"kss": [1, 5]}}, r"unknown metric option 'kss' for a text-reid task; known: ks"),
    ({"main_score": "mA"}, r"main_score 'mA' is not a score of a text-reid task .*R@1"),
    ({"metric_options": {"ks": [1, 5]}, "main_score": "R@10"}, r"main_score 'R@10' is not a score"),
    ({"kind": "image-reid", "family": "image-reid", "metric_options": {"max_rank": 5}, "main_score": "R@10"},
     r"main_score 'R@10' is not a score of a image-reid task"),
    ({"kind": "attributes", "family": "attributes", "main_score": "R@1", "protocols": ["linear-probe"]},
     r"one of: Acc, F1, Prec, Rec, mA"),
    ({"kind": "attributes", "family": "attributes", "main_score": "mA", "protocols": ["linear-probe"],
      "metric_options": {"treshold": 0.5}}, r"unknown metric option 'treshold' for a attributes task"),
], ids=["unknown-text-option", "score-of-other-kind", "rank-not-in-ks", "rank-above-max-rank",
        "attribute-score", "unknown-attribute-option"])
def test_metric_options_and_main_score_are_checked_at_load(tmp_path, change, message) -> None:
    _write(tmp_path / "t.yaml", BASE | change)
    with pytest.raises(ConfigError, match=message) as info:
        load_task_file(tmp_path / "t.yaml")
    assert str(info.value).startswith(f"{tmp_path / 't.yaml'}: ") and "\n" not in str(info.value)
    assert "got {" not in str(info.value)  # a whole-file check does not repeat the whole file


def test_valid_metric_options_and_scores_load(tmp_path) -> None:
    _write(tmp_path / "t.yaml", BASE | {"metric_options": {"ks": [1, 20]}, "main_score": "i2t_R@20"})
    assert load_task_file(tmp_path / "t.yaml").main_score == "i2t_R@20"


def test_the_schema_knows_the_metric_options_the_protocols_accept() -> None:
    from plipbench.evaluation.protocols.attributes import ATTRIBUTE_METRIC_DEFAULTS
    from plipbench.evaluation.protocols.image_reid import IMAGE_METRIC_DEFAULTS
    from plipbench.evaluation.protocols.parsing import PARSING_METRIC_DEFAULTS
    from plipbench.evaluation.protocols.person_search import PERSON_SEARCH_METRIC_DEFAULTS
    from plipbench.evaluation.protocols.text_reid import TEXT_METRIC_DEFAULTS
    from plipbench.evaluation.tasks import _METRIC_OPTIONS

    protocols = {"text-reid": set(TEXT_METRIC_DEFAULTS), "image-reid": set(IMAGE_METRIC_DEFAULTS),
                 "attributes": set(ATTRIBUTE_METRIC_DEFAULTS), "parsing": set(PARSING_METRIC_DEFAULTS),
                 "person-search": set(PERSON_SEARCH_METRIC_DEFAULTS)}
    assert protocols == _METRIC_OPTIONS


def test_tasks_list_refuses_a_bad_task_file_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    from plipbench.cli import main

    _write(tmp_path / "tasks" / "bad.yaml", BASE | {"metric_options": {"kss": [1]}})
    monkeypatch.setenv("PLIPBENCH_TASKS", str(tmp_path / "tasks"))
    for command in (["tasks", "list"], ["tasks", "show", "t"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {tmp_path / 'tasks' / 'bad.yaml'}: ") and err.count("\n") == 1
        assert "unknown metric option 'kss'" in err


def test_yaml_and_schema_errors_are_one_line(tmp_path) -> None:
    (tmp_path / "y.yaml").write_text("name: t\nprotocols: [zero-shot\nkind: text-reid\n")
    with pytest.raises(DataError) as info:
        load_task_file(tmp_path / "y.yaml")
    assert "\n" not in str(info.value) and "line 3, column 5" in str(info.value)
    _write(tmp_path / "z.yaml", BASE | {"kind": "text", "splits": {"train": 3, "extra": 1}})
    with pytest.raises(ConfigError) as info:
        load_task_file(tmp_path / "z.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.count("; ") >= 2 and "unknown key 'splits.extra'" in message and "kind: " in message


def test_task_protocol_options_are_checked_when_the_task_loads(tmp_path) -> None:
    protocol = {"name": "lp", "base": "linear-probe", "options": {"epochs": "ten"}}
    _write(tmp_path / "a.yaml", BASE | {"protocols": [protocol]})
    with pytest.raises(ConfigError, match=r"a.yaml: .*task t, protocol lp \(text-reid linear-probe\): option 'epochs' "
                                          r"expects an integer >= 1, got 'ten'"):
        load_task_file(tmp_path / "a.yaml")
    _write(tmp_path / "a.yaml", BASE | {"protocols": [protocol | {"options": {"epochs": 3, "lr": 1}}]})
    assert load_task_file(tmp_path / "a.yaml").protocol("lp").options == {"epochs": 3, "lr": 1}  # as written
