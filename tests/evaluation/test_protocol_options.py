"""The typed protocol options and the one protocol registry.

The literal defaults below are the ``*_DEFAULTS`` dicts the protocols had before their options became models
(copied at commit 3acc94b): the committed results record these exact options, so they must not move.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import options as opt
from plipbench.evaluation.protocols.registry import PROTOCOLS, bases, deterministic_bases, protocol_entry
from plipbench.evaluation.tasks import TaskRegistry

ROOT = Path(__file__).resolve().parents[2]

BEFORE = {
    ("text-reid", "zero-shot"): {"directions": ["t2i"]},
    ("text-reid", "linear-probe"): {
        "epochs": 10, "lr": 1e-3, "weight_decay": 0.0, "identities_per_batch": 16, "images_per_identity": 4,
        "init": "identity", "input_scale": 10.0, "directions": ["t2i"],
    },
    ("image-reid", "zero-shot"): {"flip": False, "rerank": None},
    ("attributes", "linear-probe"): {
        "method": "weighted-bce", "solver": "lbfgs", "C": 1.0, "C_grid": [0.01, 0.1, 1.0, 10.0], "max_iter": 100,
        "refit_on_train_val": True, "epochs": 20, "lr": 1e-2, "batch_size": 64, "weight_decay": 1e-4,
    },
    ("attributes", "zero-shot"): {"scale": 100.0, "prompts": None},
    ("parsing", "linear-probe"): {
        "input_size": [256, 128], "layers": [-1], "epochs": 30, "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 32,
        "loss_stride": 1,  # added after the parsing probe was first committed (not yet in any committed result)
    },
    ("person-search", "gt-boxes"): {},
    # the fine-tunes' dicts (text_reid.TEXT_FINE_TUNE_DEFAULTS, parsing_fine_tune.PARSING_FINE_TUNE_DEFAULTS,
    # image_reid.IMAGE_FINE_TUNE_DEFAULTS, attributes.ATTRIBUTE_FINE_TUNE_DEFAULTS; the last two at commit 70adedc)
    ("text-reid", "fine-tune"): {
        "epochs": 1, "lr": 1e-4, "classifier_lr_factor": 10.0, "weight_decay": 0.02, "identities_per_batch": 16,
        "images_per_identity": 2, "loss": "cmpm+cmpc", "warmup_steps": 0, "max_steps": None, "flip_probability": 0.5,
        "num_workers": 0, "sync_bn": False, "directions": ["t2i"],
    },
    ("parsing", "fine-tune"): {
        "input_size": [256, 128], "layers": [-1], "epochs": 5, "max_steps": None, "lr": 1e-4, "head_lr_factor": 10.0,
        "weight_decay": 1e-4, "batch_size": 8, "warmup_steps": 0, "poly_power": 0.9, "clip_grad_norm": None,
        "flip_probability": 0.5, "num_workers": 0, "sync_bn": False,
    },
    ("image-reid", "fine-tune"): {
        "epochs": 1, "lr": 3.5e-4, "weight_decay": 5e-4, "identities_per_batch": 8, "images_per_identity": 4,
        "margin": 0.3, "label_smoothing": 0.1, "warmup_steps": 0, "max_steps": None, "flip_probability": 0.5,
        "num_workers": 0, "sync_bn": False, "flip": False, "rerank": None,
    },
    ("attributes", "fine-tune"): {
        "epochs": 5, "lr": 1e-4, "classifier_lr_factor": 10.0, "weight_decay": 5e-4, "optimizer": "adam",
        "batch_size": 64, "logits_bn": True, "clip_grad_norm": 10.0, "warmup_steps": 0, "max_steps": None,
        "flip_probability": 0.5, "num_workers": 0, "sync_bn": False,
    },
}
# recipe_run.RUN_OPTIONS plus the text fine-tune's extra ``directions``: a recipe run's own options
BEFORE_RECIPE_RUN = {"recipe": None, "input_size": "recipe", "max_steps": None, "num_workers": 0, "sync_bn": False,
                     "autocast": "recipe", "channels_last": "auto", "compile": False, "directions": ["t2i"]}
# every fine-tune's recipe-run own options: RUN_OPTIONS plus the extras it passed to resolve_protocol_recipe
# (image ReID: image_reid.IMAGE_RECIPE_EVAL_OPTIONS, attributes: none)
_RUN = {k: v for k, v in BEFORE_RECIPE_RUN.items() if k != "directions"}
BEFORE_RECIPE_RUNS = {
    ("text-reid", "fine-tune"): BEFORE_RECIPE_RUN,
    ("image-reid", "fine-tune"): {**_RUN, "flip": None, "rerank": None},
    ("attributes", "fine-tune"): _RUN,
}
WHERE = "task t, protocol p (kind base)"


def _types(tree):
    """The JSON types of a tree, recursively (``1.0`` float and ``1`` int differ)."""
    if isinstance(tree, dict):
        return {k: _types(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_types(v) for v in tree]
    return type(tree).__name__


@pytest.mark.parametrize("key", sorted(BEFORE))
def test_defaults_equal_the_recorded_ones(key) -> None:
    entry = protocol_entry(*key)
    assert entry.options is not None
    resolved = entry.validate({}, WHERE)
    assert resolved == BEFORE[key]
    assert list(resolved) == list(BEFORE[key])  # same key order in the result files
    assert _types(resolved) == _types(BEFORE[key])
    assert json.dumps(resolved) == json.dumps(BEFORE[key])
    resolved["x"] = 1  # a fresh dict each time: nobody mutates the defaults
    assert entry.validate({}, WHERE) == BEFORE[key]


def test_values_are_recorded_as_before() -> None:
    probe = protocol_entry("attributes", "linear-probe")
    got = probe.validate({"lr": 1, "C_grid": [1, 2], "epochs": 3}, WHERE)
    assert got["lr"] == 1.0 and isinstance(got["lr"], float) and got["C_grid"] == [1.0, 2.0]
    assert all(isinstance(c, float) for c in got["C_grid"]) and got["epochs"] == 3
    parsing = protocol_entry("parsing", "linear-probe").validate({"input_size": (64, 32), "layers": (-2, -1)}, WHERE)
    assert parsing["input_size"] == [64, 32] and parsing["layers"] == [-2, -1]
    prompts = protocol_entry("attributes", "zero-shot").validate({"prompts": {"hat": ("a hat", "no hat")}}, WHERE)
    assert prompts["prompts"] == {"hat": ["a hat", "no hat"]}


def test_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        protocol_entry("text-reid", "linear-probe").validate({"epochz": 3}, WHERE)
    assert str(err.value) == (f"{WHERE}: unknown option 'epochz'; known options: epochs, lr, weight_decay, "
                              "identities_per_batch, images_per_identity, init, input_scale, directions")
    with pytest.raises(ConfigError, match=r"unknown option 'lr'; known options: $"):
        protocol_entry("person-search", "gt-boxes").validate({"lr": 1}, WHERE)


@pytest.mark.parametrize(("kind", "base", "options", "message"), [
    ("text-reid", "linear-probe", {"epochs": "3"}, "option 'epochs' expects an integer >= 1, got '3'"),
    ("text-reid", "linear-probe", {"epochs": 2.0}, "option 'epochs' expects an integer >= 1, got 2.0"),
    ("text-reid", "linear-probe", {"epochs": True}, "option 'epochs' expects an integer >= 1, got True"),
    ("text-reid", "linear-probe", {"lr": "1e-3"}, "option 'lr' expects a number > 0, got '1e-3'"),
    ("image-reid", "zero-shot", {"flip": 1}, "option 'flip' expects true or false, got 1"),
    ("parsing", "linear-probe", {"input_size": [64]}, "option 'input_size' expects [H, W], two integers >= 16"),
])
def test_wrong_type_refused(kind, base, options, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{WHERE}: {message}")):
        protocol_entry(kind, base).validate(options, WHERE)


@pytest.mark.parametrize(("kind", "base", "options", "message"), [
    ("text-reid", "linear-probe", {"epochs": 0}, "option 'epochs' expects an integer >= 1, got 0"),
    ("text-reid", "linear-probe", {"lr": 0}, "option 'lr' expects a number > 0, got 0"),
    ("text-reid", "linear-probe", {"weight_decay": -1.0}, "option 'weight_decay' expects a number >= 0, got -1.0"),
    ("text-reid", "linear-probe", {"init": "zeros"}, "option 'init' expects one of 'identity', 'random', got 'zeros'"),
    ("text-reid", "zero-shot", {"directions": ["i2t"]},
     "option 'directions' expects a list holding 't2i' and optionally 'i2t', got ['i2t']"),
    ("text-reid", "zero-shot", {"directions": ["t2i", "t2i"]}, "option 'directions' expects a list holding 't2i'"),
    ("attributes", "linear-probe", {"method": "svm"}, "option 'method' expects one of 'logistic-regression', "
                                                      "'weighted-bce', got 'svm'"),
    ("attributes", "linear-probe", {"C_grid": []}, "option 'C_grid' expects a non-empty list of positive numbers"),
    ("attributes", "linear-probe", {"C_grid": [1.0, -1.0]}, "option 'C_grid' expects a non-empty list of positive"),
    ("attributes", "zero-shot", {"prompts": {"hat": ["only one"]}}, "option 'prompts' expects null or a mapping"),
    ("image-reid", "zero-shot", {"rerank": {"k3": 1}}, "option 'rerank' expects null or a mapping with keys k1"),
    ("parsing", "linear-probe", {"input_size": [8, 128]}, "option 'input_size' expects [H, W], two integers >= 16"),
    ("parsing", "linear-probe", {"layers": []}, "option 'layers' expects a non-empty list of stage indices"),
])
def test_range_and_choice_refused(kind, base, options, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{WHERE}: {message}")):
        protocol_entry(kind, base).validate(options, WHERE)


def test_every_task_yaml_protocol_is_registered() -> None:
    registry = TaskRegistry(ROOT / "tasks")
    seen = set()
    for name, task in registry.tasks.items():
        for spec in task.protocol_specs():
            assert (task.kind, spec.base) in PROTOCOLS, (name, spec.base)
            seen.add((task.kind, spec.base))
    assert seen == set(PROTOCOLS)  # and no registered protocol is unused by every task
    assert deterministic_bases() == ("gt-boxes", "zero-shot")
    assert bases("image-reid") == ("zero-shot", "fine-tune")
    with pytest.raises(ConfigError, match="no protocol 'linear-probe' for task kind 'person-search'; known: gt-boxes"):
        protocol_entry("person-search", "linear-probe")


def test_every_protocol_is_typed() -> None:
    """No protocol checks its own options any more: each has a model, each recipe-run fine-tune a run model."""
    for key, entry in PROTOCOLS.items():
        assert isinstance(entry.options, type) and issubclass(entry.options, opt.ProtocolOptions), key
        assert entry.validate({}, WHERE) == entry.defaults(), key
    fine_tunes = {k: e.recipe_options for k, e in PROTOCOLS.items() if e.recipe_options is not None}
    assert fine_tunes == {("text-reid", "fine-tune"): opt.TextRecipeRunOptions,
                          ("image-reid", "fine-tune"): opt.ImageRecipeRunOptions,
                          ("attributes", "fine-tune"): opt.RecipeRunOptions}


def test_readme_defaults_table_is_generated() -> None:
    table = opt.defaults_markdown()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's protocol defaults table is stale: " \
                            "python -m plipbench.evaluation.protocols.options --markdown"
    out = subprocess.run([sys.executable, "-m", "plipbench.evaluation.protocols.options", "--markdown"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout == table


@pytest.mark.parametrize(("kind", "base", "options", "message"), [
    ("text-reid", "fine-tune", {"epochs": 0}, "option 'epochs' expects an integer >= 1, got 0"),
    ("text-reid", "fine-tune", {"lr": 0.0}, "option 'lr' expects a number > 0, got 0.0"),
    ("text-reid", "fine-tune", {"loss": "sdm"}, "option 'loss' expects one of 'cmpm+cmpc', 'cmpm', got 'sdm'"),
    ("text-reid", "fine-tune", {"flip_probability": 1.5}, "option 'flip_probability' expects a number >= 0 and <= 1"),
    ("text-reid", "fine-tune", {"max_steps": 0}, "option 'max_steps' expects an integer >= 1 or null, got 0"),
    ("text-reid", "fine-tune", {"sync_bn": 1}, "option 'sync_bn' expects true or false, got 1"),
    ("parsing", "fine-tune", {"batch_size": 1}, "option 'batch_size' expects an integer >= 2, got 1"),
    ("parsing", "fine-tune", {"clip_grad_norm": 0}, "option 'clip_grad_norm' expects a number > 0 or null, got 0"),
    ("parsing", "fine-tune", {"input_size": [8, 8]}, "option 'input_size' expects [H, W], two integers >= 16"),
    ("parsing", "fine-tune", {"epochz": 1}, "unknown option 'epochz'; known options: input_size, layers, epochs"),
    # a recipe run: its own options typed, whatever the overrides
    ("text-reid", "fine-tune", {"recipe": "irra", "input_size": "square"},
     "option 'input_size' expects one of 'recipe', 'native', got 'square'"),
    ("text-reid", "fine-tune", {"recipe": "irra", "num_workers": -1}, "option 'num_workers' expects an integer >= 0"),
    ("text-reid", "fine-tune", {"recipe": 3}, "option 'recipe' expects a string or null, got 3"),
    ("text-reid", "fine-tune", {"recipe": "irra", "directions": ["i2t"]}, "option 'directions' expects a list"),
    # image ReID: the short fine-tune (the bounds its check_* calls enforced) and a recipe run
    ("image-reid", "fine-tune", {"label_smoothing": 1.0},
     "option 'label_smoothing' expects a number >= 0 and < 1, got 1.0"),
    ("image-reid", "fine-tune", {"lr": 0}, "option 'lr' expects a number > 0, got 0"),
    ("image-reid", "fine-tune", {"margin": -0.1}, "option 'margin' expects a number >= 0, got -0.1"),
    ("image-reid", "fine-tune", {"images_per_identity": 0}, "option 'images_per_identity' expects an integer >= 1"),
    ("image-reid", "fine-tune", {"flip": "yes"}, "option 'flip' expects true or false, got 'yes'"),
    ("image-reid", "fine-tune", {"rerank": {"k": 20}}, "option 'rerank' expects null or a mapping with keys k1"),
    ("image-reid", "fine-tune", {"warmup_steps": -1}, "option 'warmup_steps' expects an integer >= 0, got -1"),
    ("image-reid", "fine-tune", {"recipe": "bot", "flip": 1}, "option 'flip' expects true or false or null, got 1"),
    ("image-reid", "fine-tune", {"recipe": "bot", "rerank": {"k3": 1}},
     "option 'rerank' expects null or a mapping with keys k1"),
    ("image-reid", "fine-tune", {"recipe": "bot", "max_steps": 0}, "option 'max_steps' expects an integer >= 1 or null"),
    # attributes: the short fine-tune and a recipe run
    ("attributes", "fine-tune", {"optimizer": "lamb"},
     "option 'optimizer' expects one of 'adam', 'adamw', 'sgd', got 'lamb'"),
    ("attributes", "fine-tune", {"batch_size": 1}, "option 'batch_size' expects an integer >= 2, got 1"),
    ("attributes", "fine-tune", {"classifier_lr_factor": 0}, "option 'classifier_lr_factor' expects a number > 0"),
    ("attributes", "fine-tune", {"clip_grad_norm": -1.0}, "option 'clip_grad_norm' expects a number > 0 or null"),
    ("attributes", "fine-tune", {"logits_bn": 0}, "option 'logits_bn' expects true or false, got 0"),
    ("attributes", "fine-tune", {"flip_probability": -0.5}, "option 'flip_probability' expects a number >= 0"),
    ("attributes", "fine-tune", {"recipe": "rethinking", "sync_bn": "no"}, "option 'sync_bn' expects true or false"),
    ("attributes", "fine-tune", {"recipe": "rethinking", "num_workers": -1},
     "option 'num_workers' expects an integer >= 0, got -1"),
])
def test_fine_tune_options_refused(kind, base, options, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{WHERE}: {message}")):
        protocol_entry(kind, base).validate(options, WHERE)


def test_fine_tune_values_are_recorded_as_before() -> None:
    text = protocol_entry("text-reid", "fine-tune").validate({"lr": 1, "flip_probability": 1, "epochs": 2}, WHERE)
    assert text["lr"] == 1.0 and isinstance(text["lr"], float) and isinstance(text["flip_probability"], float)
    parsing = protocol_entry("parsing", "fine-tune").validate({"input_size": (64, 32), "clip_grad_norm": 1}, WHERE)
    assert parsing["input_size"] == [64, 32] and parsing["clip_grad_norm"] == 1.0
    assert isinstance(parsing["clip_grad_norm"], float)
    image = protocol_entry("image-reid", "fine-tune").validate({"margin": 0, "lr": 1, "label_smoothing": 0}, WHERE)
    assert image["margin"] == 0.0 and all(isinstance(image[k], float) for k in ("margin", "lr", "label_smoothing"))
    image = protocol_entry("image-reid", "fine-tune").validate({"rerank": {"k1": 20, "k2": 6}}, WHERE)
    assert image["rerank"] == {"k1": 20, "k2": 6}
    attrs = protocol_entry("attributes", "fine-tune").validate({"clip_grad_norm": None, "weight_decay": 0}, WHERE)
    assert attrs["clip_grad_norm"] is None and attrs["weight_decay"] == 0.0 and isinstance(attrs["weight_decay"], float)


def test_a_recipe_run_types_its_own_options_and_passes_the_overrides() -> None:
    from plipbench.evaluation.protocols.recipe_run import RUN_OPTIONS

    entry = protocol_entry("text-reid", "fine-tune")
    assert entry.recipe_options is opt.TextRecipeRunOptions
    assert opt.RecipeRunOptions.defaults() == RUN_OPTIONS  # the run's own options, written twice, agree
    assert entry.recipe_options.defaults() == BEFORE_RECIPE_RUN
    given = {"recipe": "irra", "epochs": 2, "optimizer.lr": 1e-5, "selection": "test", "max_steps": 3}
    got = entry.validate(given, WHERE)
    assert got == {**BEFORE_RECIPE_RUN, "recipe": "irra", "max_steps": 3, "epochs": 2, "optimizer.lr": 1e-5,
                   "selection": "test"}
    # a key the short fine-tune lacks (an override, as on a real-data task without `recipe`) is a recipe run too
    assert entry.validate({"epochs_scale": 0.5}, WHERE)["epochs_scale"] == 0.5
    # without either, the short fine-tune's model, extra="forbid" and all
    assert entry.validate({"epochs": 2}, WHERE) == {**BEFORE[("text-reid", "fine-tune")], "epochs": 2}
    with pytest.raises(ConfigError, match="option 'epochs' expects an integer >= 1, got '2'"):
        entry.validate({"epochs": "2"}, WHERE)


@pytest.mark.parametrize("key", sorted(BEFORE_RECIPE_RUNS))
def test_every_recipe_run_keeps_its_own_options(key) -> None:
    """Each fine-tune's recipe run: its own options' defaults as before (values, order, JSON types), the overrides
    passed through after them; a short fine-tune key stays a short fine-tune."""
    entry = protocol_entry(*key)
    assert json.dumps(entry.recipe_options.defaults()) == json.dumps(BEFORE_RECIPE_RUNS[key])
    got = entry.validate({"recipe": "some-recipe", "epochs": 3, "optimizer.lr": 1e-5}, WHERE)
    assert got == {**BEFORE_RECIPE_RUNS[key], "recipe": "some-recipe", "epochs": 3, "optimizer.lr": 1e-5}
    assert list(got)[-2:] == ["epochs", "optimizer.lr"]
    assert entry.validate({"epochs": 3}, WHERE) == {**BEFORE[key], "epochs": 3}
    # an override key alone (a real-data task without `recipe`) is a recipe run
    assert entry.validate({"epochs_scale": 0.5}, WHERE) == {**BEFORE_RECIPE_RUNS[key], "epochs_scale": 0.5}


def test_image_recipe_run_flip_and_rerank() -> None:
    entry = protocol_entry("image-reid", "fine-tune")
    got = entry.validate({"recipe": "bot", "flip": True, "rerank": {"k1": 20, "k2": 6, "lambda_value": 0.3}}, WHERE)
    assert got["flip"] is True and got["rerank"] == {"k1": 20, "k2": 6, "lambda_value": 0.3}


@pytest.mark.parametrize("kind", ["text-reid", "parsing", "image-reid", "attributes"])
def test_committed_fine_tune_results_record_the_typed_defaults(kind) -> None:
    """The committed results (reproduced by CI) record options that the typed model resolves to themselves: same
    values, same JSON types. Keys the result lacks (``sync_bn`` came later) or the runner adds are skipped. A
    result's kind is its task's (a domain-generalization task is a text or image ReID one)."""
    tasks = TaskRegistry(ROOT / "tasks").tasks
    entry = protocol_entry(kind, "fine-tune")
    defaults = entry.defaults()
    checked = 0
    for path in sorted((ROOT / "results").glob("*/*__fine-tune__*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result["task"] not in tasks or tasks[result["task"]].kind != kind:
            continue
        recorded = result["provenance"]["protocol_options"]
        if recorded.get("recipe") is not None:
            continue
        shared = {k: recorded[k] for k in defaults if k in recorded}
        resolved = entry.validate(shared, WHERE)
        assert json.dumps(shared) == json.dumps({k: resolved[k] for k in shared}), path.name
        checked += 1
    if kind in ("text-reid", "image-reid"):  # the mini suite: 3 models x 2 tasks (one of them DG) x 3 seeds
        assert checked >= 18
    if kind == "attributes":
        assert checked >= 9
