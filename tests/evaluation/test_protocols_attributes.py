from __future__ import annotations

import numpy as np
import pytest
from protocol_fixtures import (
    ATTRIBUTE_TASK,
    check_fractions,
    engineered_attribute_data,
    image_only_backbone,
    make_context,
    plip_mini,
    real_store,
    stub_text_backbone,
    synthetic_dataset,
    task_data,
)

from plipbench.data.synth import PA100K_ATTRIBUTES
from plipbench.errors import ConfigError, PlipbenchError
from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.protocols.attributes import fit_logistic
from plipbench.evaluation.protocols.options import AttributeLinearProbeOptions
from plipbench.evaluation.protocols.prompts import PA100K_PROMPTS, attribute_prompt, attribute_words

KEYS = ["mA", "Acc", "Prec", "Rec", "F1"]


@pytest.fixture(scope="module")
def pa100k(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-pa100k", "pa100k", 100, 1)


def _check_output(out, n_images: int, n_attr: int) -> None:
    check_fractions(out.scores, KEYS)
    assert out.per_query["probs"].dtype == np.float32 and out.per_query["probs"].shape == (n_images, n_attr)
    assert out.per_query["labels"].dtype == np.uint8 and out.per_query["labels"].shape == (n_images, n_attr)
    assert ((out.per_query["probs"] >= 0) & (out.per_query["probs"] <= 1)).all()
    rows = out.details["per_attribute"]
    assert len(rows) == n_attr
    assert {"name", "mA", "pos_recall", "neg_recall", "F1"} <= set(rows[0])
    assert np.isclose(np.mean([r["mA"] for r in rows]), out.scores["mA"])
    assert out.metric_protocol["convention"] == "rethinking"


def test_linear_probe_on_plip_mini(pa100k):
    backbone = plip_mini()
    data = task_data(pa100k)
    out = get_protocol("attributes", "linear-probe")(
        make_context(ATTRIBUTE_TASK, "linear-probe", data, backbone, real_store(backbone),
                     {"method": "logistic-regression", "C_grid": [0.1, 1.0]}))
    _check_output(out, len(data.test_records), len(PA100K_ATTRIBUTES))
    assert [r["name"] for r in out.details["per_attribute"]] == list(PA100K_ATTRIBUTES)
    assert out.selection_split == "val" and out.details["selected_C"] in (0.1, 1.0)
    assert not out.zero_shot
    assert out.options == {**AttributeLinearProbeOptions.defaults(), "method": "logistic-regression", "C_grid": [0.1, 1.0]}


@pytest.mark.parametrize("method", ["logistic-regression", "weighted-bce"])
def test_linear_probe_learns_linear_labels(method):
    data, store = engineered_attribute_data()
    out = get_protocol("attributes", "linear-probe")(
        make_context(ATTRIBUTE_TASK, "linear-probe", data, stub_text_backbone(), store,
                     {"method": method}))
    _check_output(out, len(data.test_records), 6)
    assert out.scores["mA"] > 0.9
    assert out.selection_split == "val"
    # only train / val / test features were asked for, and the test labels never chose anything
    assert out.details["selection"] in ("C by val mA", "best val mA")


def test_linear_probe_without_val_uses_fixed_c():
    data, store = engineered_attribute_data()
    data.val_records = []
    out = get_protocol("attributes", "linear-probe")(
        make_context(ATTRIBUTE_TASK, "linear-probe", data, stub_text_backbone(), store,
                     {"method": "logistic-regression", "C": 0.5}))
    assert out.selection_split is None and out.details["selected_C"] == 0.5


def test_fit_logistic_matches_sklearn_and_handles_constant_attributes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = np.stack([(x[:, 0] + 0.5 * rng.normal(size=200) > 0), np.zeros(200), np.ones(200),
                  (x[:, 1] - x[:, 2] > 0.3)], axis=1).astype(int)
    test = rng.normal(size=(50, 5))
    ours = fit_logistic(x, y, 0.5)(test)
    reference = fit_logistic(x, y, 0.5, solver="sklearn", max_iter=2000)(test)
    assert np.abs(ours - reference).max() < 5e-3
    assert (ours[:, 1] == 0).all() and (ours[:, 2] == 1).all()


def test_zero_shot_runs_and_image_only_backbone_fails(pa100k):
    backbone = plip_mini()
    data = task_data(pa100k)
    out = get_protocol("attributes", "zero-shot")(
        make_context(ATTRIBUTE_TASK, "zero-shot", data, backbone, real_store(backbone),
                     {"prompts": {"Hat": ["a person in a hat", "a bare-headed person"]}, "scale": 50}))
    _check_output(out, len(data.test_records), len(PA100K_ATTRIBUTES))
    assert out.zero_shot and out.selection_split is None
    assert out.options["scale"] == 50.0
    hat = next(p for p in out.details["prompts"] if p["name"] == "Hat")
    assert hat["positive"] == "a person in a hat"

    image_only = image_only_backbone()
    with pytest.raises(PlipbenchError, match="tiny-cnn has no text encoder; task synth-pa100k"):
        get_protocol("attributes", "zero-shot")(
            make_context(ATTRIBUTE_TASK, "zero-shot", data, image_only, real_store(image_only)))


def test_option_errors():
    data, store = engineered_attribute_data(n_train=40, n_val=10, n_test=10)
    probe = get_protocol("attributes", "linear-probe")
    for options, pattern in [({"method": "svm"}, "'method'"), ({"C_grid": []}, "'C_grid'"),
                             ({"threshold": 0.4}, r"synth-pa100k, protocol linear-probe.*'threshold'")]:
        with pytest.raises(ConfigError, match=pattern):
            probe(make_context(ATTRIBUTE_TASK, "linear-probe", data, stub_text_backbone(), store, options))
    with pytest.raises(ConfigError, match="prompts"):
        get_protocol("attributes", "zero-shot")(
            make_context(ATTRIBUTE_TASK, "zero-shot", data, stub_text_backbone(), store, {"prompts": {"nope": ["a", "b"]}}))
    with pytest.raises(ConfigError, match="metric option 'metric'"):
        probe(make_context(ATTRIBUTE_TASK, "linear-probe", data, stub_text_backbone(), store,
                           metric_options={"metric": "cosine"}))


def test_prompts():
    assert set(PA100K_ATTRIBUTES) <= set(PA100K_PROMPTS)
    for name in PA100K_ATTRIBUTES:
        positive, negative = attribute_prompt(name)
        assert positive != negative and positive.startswith("a photo of")
    assert attribute_words("upperBodyLogo") == "upper body logo"
    assert attribute_words("personalLess30") == "personal less 30"
    assert attribute_words("accessory_Hat") == "accessory hat"
    assert attribute_words("Skirt&Dress") == "skirt or dress"
    assert attribute_prompt("upperBodyLogo") == ("a photo of a person with upper body logo",
                                                 "a photo of a person without upper body logo")


def test_default_probe_is_weighted_bce_so_rare_attributes_are_not_ignored():
    assert AttributeLinearProbeOptions.defaults()["method"] == "weighted-bce"
