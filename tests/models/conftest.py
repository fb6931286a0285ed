"""Shared fixtures for the backbone tests: one thread (the machine is shared), tiny models saved to tmp."""

from __future__ import annotations

import pytest
import torch

from tests.models.hub_fixtures import fake_hub_server, hub_env  # noqa: F401 - fixtures for the hub tests

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory):
    from plipbench.models.plip.tokenizer import PEDESTRIAN_SENTENCES, train_tokenizer_dir

    return train_tokenizer_dir(PEDESTRIAN_SENTENCES, tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.fixture()
def cli():
    from typer.testing import CliRunner

    from plipbench.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def write_tiny_clip(directory, tokenizer_dir) -> None:
    """A random CLIPModel, tokenizer and image processor in ``directory``, as ``save_pretrained`` writes them (the
    hub format)."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = CLIPConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32, "eos_token_id": tok.sep_token_id,
                     "bos_token_id": tok.cls_token_id, "pad_token_id": tok.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=24,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(str(directory))
    tok.save_pretrained(str(directory))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        str(directory)
    )
