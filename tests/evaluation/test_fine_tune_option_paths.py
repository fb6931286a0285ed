"""The image ReID and attribute fine-tunes check their options with their models on the path they take: the short
fine-tune (``ImageFineTuneOptions`` / ``AttributeFineTuneOptions``) and the recipe run (``ImageRecipeRunOptions`` /
``RecipeRunOptions``, before the recipe is resolved). A bad value is a one-line ConfigError naming the task, the
protocol and the option, raised before anything trains."""

from __future__ import annotations

import re

import pytest
import torch
from protocol_fixtures import (
    ATTRIBUTE_TASK,
    IMAGE_TASK,
    image_only_backbone,
    make_context,
    plip_mini,
    real_store,
    synthetic_dataset,
    task_data,
)

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import get_protocol


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    torch.set_num_threads(1)
    return task_data(synthetic_dataset(tmp_path_factory.mktemp("market"), "synth-market", "market1501", 48, 4),
                     val=False)


@pytest.fixture(scope="module")
def pa100k(tmp_path_factory):
    torch.set_num_threads(1)
    return task_data(synthetic_dataset(tmp_path_factory.mktemp("pa100k"), "synth-pa100k", "pa100k", 12, 4))


def _refused(kind, task, data, backbone, options, message):
    ctx = make_context(task, "fine-tune", data, backbone, real_store(backbone), options)
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        get_protocol(kind, "fine-tune")(ctx)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"task {ctx.task.name}, protocol ")
    return text


@pytest.mark.parametrize(("options", "message"), [
    # the short fine-tune (a synthetic twin without `recipe`)
    ({"label_smoothing": 1.0}, "option 'label_smoothing' expects a number >= 0 and < 1, got 1.0"),
    ({"lr": 0.0}, "option 'lr' expects a number > 0, got 0.0"),
    ({"epochs": "1"}, "option 'epochs' expects an integer >= 1, got '1'"),
    ({"rerank": {"k1": 20, "k4": 1}}, "option 'rerank' expects null or a mapping with keys k1, k2, lambda_value"),
    ({"flip": 1}, "option 'flip' expects true or false, got 1"),
    # the recipe run: its own options typed before the recipe resolves
    ({"recipe": "bot", "flip": "yes"}, "option 'flip' expects true or false or null, got 'yes'"),
    ({"recipe": "bot", "rerank": {"k3": 1}}, "option 'rerank' expects null or a mapping with keys k1"),
    ({"recipe": "bot", "num_workers": -1}, "option 'num_workers' expects an integer >= 0, got -1"),
    ({"recipe": "bot", "nonsense": 1}, "unknown recipe key 'nonsense'"),  # an override: the resolver's
])
def test_image_fine_tune_refuses_a_bad_option(market, options, message) -> None:
    _refused("image-reid", IMAGE_TASK, market, plip_mini(), options, message)


@pytest.mark.parametrize(("options", "message"), [
    ({"optimizer": "lamb"}, "option 'optimizer' expects one of 'adam', 'adamw', 'sgd', got 'lamb'"),
    ({"batch_size": 1}, "option 'batch_size' expects an integer >= 2, got 1"),
    ({"clip_grad_norm": 0}, "option 'clip_grad_norm' expects a number > 0 or null, got 0"),
    ({"logits_bn": "true"}, "option 'logits_bn' expects true or false, got 'true'"),
    ({"recipe": "rethinking", "sync_bn": 1}, "option 'sync_bn' expects true or false, got 1"),
    ({"recipe": "rethinking", "max_steps": 0}, "option 'max_steps' expects an integer >= 1 or null, got 0"),
    ({"recipe": "rethinking", "input_size": "big"}, "option 'input_size' expects one of 'recipe', 'native'"),
])
def test_attribute_fine_tune_refuses_a_bad_option(pa100k, options, message) -> None:
    _refused("attributes", ATTRIBUTE_TASK, pa100k, image_only_backbone(), options, message)
