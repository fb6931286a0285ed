"""plipbench PLIP checkpoints: a directory with ``model.safetensors``, ``config.json`` and ``tokenizer/``.

Saving writes everything into a temporary sibling directory and renames it into place, so a
reader never sees a half-written checkpoint. Loading rebuilds the model from ``config.json`` and
loads the tensors strictly: every missing, unexpected or wrongly shaped key is reported in one
:class:`PlipbenchError`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError, validation_summary
from plipbench.io import file_mode, make_temp_dir
from plipbench.models.plip.model import PlipConfig, PlipModel
from plipbench.models.weights import file_sha256, load_safetensors, load_state_dict_strict

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
_BERT_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "max_position_embeddings", "type_vocab_size", "hidden_act", "layer_norm_eps", "pad_token_id",
)  # fmt: skip


def is_plip_checkpoint(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def save_plip_checkpoint(
    model: PlipModel,
    directory: str | Path,
    *,
    tokenizer: Any | None = None,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (+ a ``transformers`` tokenizer, or a tokenizer directory path) to ``directory``.

    The stored config is self-contained: a text encoder built from a pretrained directory is
    recorded by its BERT config, so the checkpoint loads without that directory. ``extra`` is
    written to ``training.json`` (e.g. the pre-training run's settings).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise PlipbenchError(
            f"checkpoint directory {directory} already exists (pass overwrite=True to replace it)"
        )
    config = model.config.model_copy(deep=True)
    bert_config = model.text.encoder.config.to_dict()
    config.text.pretrained = None
    config.text.bert = {k: bert_config[k] for k in _BERT_KEYS if k in bert_config}
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(f".{directory.name}.", directory.parent)
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        os.chmod(tmp / WEIGHTS_FILE, file_mode())  # safetensors writes 0600 whatever the umask
        (tmp / CONFIG_FILE).write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
        if extra is not None:
            (tmp / "training.json").write_text(json.dumps(extra, indent=2, default=str) + "\n")
        if isinstance(tokenizer, (str, Path)):
            shutil.copytree(tokenizer, tmp / TOKENIZER_DIR)
        elif tokenizer is not None:
            tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load_plip_checkpoint(directory: str | Path) -> tuple[PlipModel, Path | None, str]:
    """``(model, tokenizer directory or None, sha256 of model.safetensors)``; strict key check."""
    from pydantic import ValidationError

    directory = Path(directory).expanduser()
    if not is_plip_checkpoint(directory):
        raise PlipbenchError(
            f"{directory} is not a plipbench PLIP checkpoint (expected a directory with {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    try:
        config = PlipConfig.model_validate_json((directory / CONFIG_FILE).read_text())
    except ValidationError as err:
        raise ConfigError(f"{directory / CONFIG_FILE}: invalid PLIP config: {validation_summary(err)}") from None
    model = PlipModel(config)
    state = load_safetensors(directory / WEIGHTS_FILE)
    load_state_dict_strict(model, state, source=str(directory / WEIGHTS_FILE))
    tok = directory / TOKENIZER_DIR
    return model, (tok if tok.is_dir() else None), file_sha256(directory / WEIGHTS_FILE)
