"""``extends:`` in task files: merge semantics, its errors, and the shipped twins' resolved specs.

``data/task_spec_hashes.json`` pins every shipped task's resolved spec and :meth:`TaskSpec.spec_hash`, as
the loader gave them before the twins were rewritten to ``extends`` their real task. Committed results
(``results/mini``) and CI's ``bench --check`` key on those hashes, so a difference here means a task's
spec changed. If that is intended (a real change of a task), regenerate the fixture with
``python tests/evaluation/test_task_extends.py --write`` and rerun the results it affects.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from plipbench.errors import ConfigError
from plipbench.evaluation.tasks import DELETE, TaskRegistry, load_task_file, merge_task_trees

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "data" / "task_spec_hashes.json"

BASE = {"name": "t", "kind": "text-reid", "family": "text-reid", "description": "real",
        "dataset": {"layout": "cuhk-pedes", "root": "/nowhere", "name": "CUHK-PEDES", "options": {"a": 1, "b": 2}},
        "splits": {"val": "val"}, "protocols": ["zero-shot", "linear-probe"], "metric_options": {"ks": [1, 5]},
        "main_score": "R@1"}


def _write(path: Path, tree: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tree if isinstance(tree, str) else yaml.safe_dump(tree, sort_keys=False))
    return path


def snapshot(registry: TaskRegistry) -> dict:
    """The fixture's content: per task, its file (relative to the tasks folder), resolved spec and hash."""
    return {name: {"file": registry.files[name].relative_to(registry.root).as_posix(), "spec_hash": spec.spec_hash(),
                   "spec": spec.model_dump(mode="json")} for name, spec in sorted(registry.tasks.items())}


# ---------------------------------------------------------------------------------------------- merge semantics

def test_mappings_merge_lists_and_scalars_replace_null_is_a_value_and_delete_removes() -> None:
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}, "l": [1, 2]}, "s": "old", "n": 3, "gone": {"k": 1}}
    override = {"a": {"y": {"q": 20, "r": 30}, "l": [3]}, "s": "new", "n": None, "gone": DELETE, "new": [4]}
    merged = merge_task_trees(base, override)
    assert merged == {"a": {"x": 1, "y": {"p": 1, "q": 20, "r": 30}, "l": [3]}, "s": "new", "n": None, "new": [4]}
    assert base == {"a": {"x": 1, "y": {"p": 1, "q": 2}, "l": [1, 2]}, "s": "old", "n": 3, "gone": {"k": 1}}
    merged["a"]["l"].append(9)  # no aliasing into either input
    assert override["a"]["l"] == [3] and base["a"]["l"] == [1, 2]
    # a mapping over a scalar (or the reverse) replaces
    assert merge_task_trees({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert merge_task_trees({"a": {"b": 2}}, {"a": 1}) == {"a": 1}


def test_delete_needs_an_inherited_key_and_is_refused_inside_a_replacing_value() -> None:
    with pytest.raises(ConfigError, match=r"!delete of 'a\.z': the task it extends has no such key"):
        merge_task_trees({"a": {"x": 1}}, {"a": {"z": DELETE}})
    with pytest.raises(ConfigError, match=r"!delete at 'l\[1\]'"):
        merge_task_trees({"l": [1, 2]}, {"l": [1, DELETE]})


def test_a_child_resolves_to_the_spec_written_in_full_and_chains_resolve(tmp_path) -> None:
    root = tmp_path / "tasks"
    _write(root / "real" / "t.yaml", BASE)
    child = _write(root / "twins" / "c.yaml", """
extends: t
name: c
dataset:
  root: null
  synthetic: {preset: synth-cuhk, seed: 1}
  options:
    b: !delete
    c: 3
splits:
  val: null
protocols: [zero-shot]
synthetic: true
""")
    _write(root / "twins" / "g.yaml", "extends: c\nname: g\ndescription: grandchild\nmetric_options: {ks: [1]}\n")
    full = BASE | {"name": "c", "dataset": {"layout": "cuhk-pedes", "synthetic": {"preset": "synth-cuhk", "seed": 1},
                                             "name": "CUHK-PEDES", "options": {"a": 1, "c": 3}},
                   "splits": {"val": None}, "protocols": ["zero-shot"], "synthetic": True}
    written = load_task_file(_write(tmp_path / "full.yaml", full))

    registry = TaskRegistry(root)
    spec = registry.get("c")
    assert spec.model_dump(mode="json") == written.model_dump(mode="json")
    assert spec.spec_hash() == written.spec_hash()
    assert spec.splits.val is None and spec.dataset.root is None and spec.dataset.options == {"a": 1, "c": 3}
    assert registry.extends == {"c": "t", "g": "c"} and registry.extends_chain("g") == ["c", "t"]
    assert registry.extends_chain("t") == [] and registry.files["c"] == child
    g = registry.get("g")
    assert (g.description, g.metric_options, g.dataset.synthetic.seed) == ("grandchild", {"ks": [1]}, 1)
    assert "extends" not in g.model_dump()
    # the parent is untouched by its children
    assert registry.get("t").dataset.root == "/nowhere" and registry.get("t").protocol_specs()[1].name == "linear-probe"
    # a file given alone finds its parent among the files of its own folder, or of tasks_root
    assert load_task_file(root / "twins" / "g.yaml", tasks_root=root).spec_hash() == g.spec_hash()
    with pytest.raises(ConfigError, match="extends unknown task 't'"):
        load_task_file(child)


# ---------------------------------------------------------------------------------------------- errors

def _one_line_error(root: Path, match: str) -> str:
    with pytest.raises(ConfigError) as info:
        TaskRegistry(root)
    message = str(info.value)
    assert "\n" not in message
    assert match in message, message
    return message


def test_an_extends_cycle_is_refused_naming_the_chain(tmp_path) -> None:
    _write(tmp_path / "a.yaml", BASE | {"name": "a", "extends": "b"})
    _write(tmp_path / "b.yaml", BASE | {"name": "b", "extends": "c"})
    _write(tmp_path / "c.yaml", BASE | {"name": "c", "extends": "a"})
    message = _one_line_error(tmp_path, "extends cycle: ")
    assert message.startswith(str(tmp_path / "c.yaml") + ": ") and message.endswith("a -> b -> c -> a")
    for f in ("b.yaml", "c.yaml"):
        (tmp_path / f).unlink()
    _write(tmp_path / "a.yaml", BASE | {"name": "a", "extends": "a"})
    assert _one_line_error(tmp_path, "extends cycle").endswith("a -> a")


def test_unknown_parent_missing_name_and_bad_extends_value_name_the_file(tmp_path) -> None:
    path = _write(tmp_path / "x.yaml", BASE | {"name": "x", "extends": "nope"})
    assert _one_line_error(tmp_path, "extends unknown task 'nope'; known tasks: x").startswith(f"{path}: ")
    _write(tmp_path / "t.yaml", BASE)
    _write(tmp_path / "x.yaml", {"extends": "t", "description": "no name"})
    _one_line_error(tmp_path, f"{path}: a task that extends 't' needs its own name")
    _write(tmp_path / "x.yaml", {"extends": ["t"], "name": "x"})
    _one_line_error(tmp_path, f"{path}: extends must be a task name, got ['t']")
    _write(tmp_path / "x.yaml", "extends: t\nname: x\nsplits:\n  test: !delete\n")
    _one_line_error(tmp_path, f"{path}: !delete of 'splits.test': the task it extends has no such key")
    (tmp_path / "x.yaml").unlink()
    _write(tmp_path / "t.yaml", yaml.safe_dump(BASE, sort_keys=False) + "citation: !delete\n")
    _one_line_error(tmp_path, f"{tmp_path / 't.yaml'}: !delete in a task that extends none (no extends key)")


def test_a_bad_merged_spec_names_the_extending_file_and_a_bad_parent_its_own(tmp_path) -> None:
    _write(tmp_path / "t.yaml", BASE)
    # a twin that adds its generator but forgets `root: null` gets both sources
    child = _write(tmp_path / "z-child.yaml", {"extends": "t", "name": "c", "dataset": {"synthetic": {"preset": "p"}}})
    _one_line_error(tmp_path, f"{child}: dataset: a dataset needs exactly one of root")
    _write(child, {"extends": "t", "name": "c", "colour": "red"})
    _one_line_error(tmp_path, f"{child}: unknown key 'colour'")
    parent = _write(tmp_path / "t.yaml", BASE | {"main_score": "R@7"})
    _write(tmp_path / "a-child.yaml", {"extends": "t", "name": "a"})  # resolved before its parent's file
    assert _one_line_error(tmp_path, "main_score 'R@7' is not a score").startswith(f"{parent}: ")


def test_the_cli_refuses_an_extends_error_in_one_line_with_exit_2(tmp_path, monkeypatch, capsys) -> None:
    from plipbench.cli import main

    _write(tmp_path / "tasks" / "a.yaml", BASE | {"name": "a", "extends": "b"})
    _write(tmp_path / "tasks" / "b.yaml", BASE | {"name": "b", "extends": "a"})
    monkeypatch.setenv("PLIPBENCH_TASKS", str(tmp_path / "tasks"))
    for command in (["tasks", "list"], ["tasks", "show", "a"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {tmp_path / 'tasks'}") and err.count("\n") == 1 and "a -> b -> a" in err


# ---------------------------------------------------------------------------------------------- shipped tasks

def test_every_shipped_task_resolves_to_its_pinned_spec_and_hash() -> None:
    pinned = json.loads(FIXTURE.read_text())
    current = snapshot(TaskRegistry(REPO / "tasks"))
    assert sorted(current) == sorted(pinned)
    changed = [name for name in pinned if current[name]["spec_hash"] != pinned[name]["spec_hash"]]
    assert not changed, f"these tasks' specs changed (see this file's docstring): {changed}"
    for name in pinned:
        assert current[name] == pinned[name], name


def test_the_synthetic_twins_extend_their_real_task() -> None:
    registry = TaskRegistry(REPO / "tasks")
    twins = {name: name.removeprefix("synth-") for name in registry.tasks
             if name.startswith("synth-") and name.removeprefix("synth-") in registry.tasks}
    assert len(twins) >= 27
    for twin, real in twins.items():
        assert registry.extends.get(twin) == real, twin
        spec, parent = registry.get(twin), registry.get(real)
        assert spec.synthetic and spec.dataset.synthetic is not None and spec.dataset.root is None
        assert (spec.kind, spec.family, spec.main_score, spec.citation, spec.paper_task) == (
            parent.kind, parent.family, parent.main_score, parent.citation, parent.paper_task)
    assert not any(registry.extends.get(name) for name in registry.tasks if not name.startswith("synth-"))


def test_the_packaged_copy_of_the_tasks_resolves_extends_alike(tmp_path, monkeypatch) -> None:
    """setup.py copies tasks/ as is to plipbench/_data/tasks; a wheel's registry resolves the same specs."""
    packaged = tmp_path / "site" / "plipbench" / "_data" / "tasks"
    shutil.copytree(REPO / "tasks", packaged)
    monkeypatch.setenv("PLIPBENCH_TASKS", str(packaged))
    registry = TaskRegistry()
    assert registry.root == packaged
    assert snapshot(registry) == json.loads(FIXTURE.read_text())
    # one twin loaded alone from the packaged folder finds its parent there
    twin = load_task_file(packaged / "image-reid" / "synth-market1501.yaml")
    assert twin.spec_hash() == registry.get("synth-market1501").spec_hash()


def test_tasks_show_prints_a_twin_resolved_and_what_it_extends(capsys, monkeypatch) -> None:
    from plipbench.cli import main

    monkeypatch.setenv("PLIPBENCH_TASKS", str(REPO / "tasks"))
    assert main(["tasks", "show", "synth-market1501"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"# {REPO / 'tasks' / 'image-reid' / 'synth-market1501.yaml'}"
    assert lines[1] == f"# extends market1501 ({REPO / 'tasks' / 'image-reid' / 'market1501.yaml'})"
    assert lines[2] == "# resolved spec:"
    shown = yaml.safe_load(out)
    registry = TaskRegistry(REPO / "tasks")
    assert shown == registry.get("synth-market1501").model_dump(mode="json", exclude_none=True)
    assert "extends" not in shown and shown["dataset"]["layout"] == "market1501"  # inherited
    assert shown["metric_options"] == {"metric": "cosine", "ap": "noninterp", "max_rank": 50}
    # a task written in full shows no extends line
    assert main(["tasks", "show", "market1501"]) == 0
    assert "# extends" not in capsys.readouterr().out


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    FIXTURE.write_text(json.dumps(snapshot(TaskRegistry(REPO / "tasks")), indent=1, sort_keys=True))
    print(f"wrote {FIXTURE}")
