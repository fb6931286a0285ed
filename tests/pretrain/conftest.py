from __future__ import annotations

from pathlib import Path

import pytest
from pretrain_fixtures import write_tiny_corpus


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "corpus")
