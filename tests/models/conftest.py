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
