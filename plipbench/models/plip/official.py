"""The released PLIP RN50 checkpoint (``PLIP_RN50.pth.tar``, Zplusdragon/PLIP).

Format (brief §5.3): a ``torch.save`` dict with
- ``ImgEncoder_state_dict``: CLIP-style ModifiedResNet-50 with an 8-head attention pool to 768
  (``attnpool.positional_embedding`` 33x2048 -> 256x128 input), BN buffers included;
- ``TxtEncoder_state_dict``: a whole ``BertModel`` under the prefix ``encoder.`` (pooler output
  is the text embedding), saved with transformers 4.26, so it carries the stale buffer
  ``encoder.embeddings.position_ids`` that newer transformers no longer has; that one key is dropped;
- optionally ``epoch`` / ``Decoder_state_dict`` (training state, ignored).

It is read with ``torch.load(weights_only=True)``: a pickle that would run code is refused.
Any other missing or unexpected key fails, all of them listed in one error. The BERT size is
read from the tensor shapes (vocab, hidden, layers, intermediate, positions), so the key names
are checked strictly while a test can use a small BERT (its hidden size must be 768, the joint
size: the released model has no projection); the number of attention heads is ``hidden / 64``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from plipbench.errors import PlipbenchError
from plipbench.models.plip.model import PlipConfig, PlipModel, TextEncoderConfig, named_config
from plipbench.models.weights import file_sha256, load_state_dict_strict, load_weights_file

IMAGE_KEY = "ImgEncoder_state_dict"
TEXT_KEY = "TxtEncoder_state_dict"
STALE_KEYS = ("encoder.embeddings.position_ids",)
OFFICIAL_URL = "https://github.com/Zplusdragon/PLIP (Google Drive id 1Cpid6AGHXF_is5ULB3UJKMGvl6kf2Tmg)"


def bert_config_from_state(state: dict[str, Any], source: str) -> dict[str, Any]:
    """BertConfig kwargs read from the shapes of a ``encoder.*`` BertModel state dict."""
    try:
        word = state["encoder.embeddings.word_embeddings.weight"]
        pos = state["encoder.embeddings.position_embeddings.weight"]
        types = state["encoder.embeddings.token_type_embeddings.weight"]
        inter = state["encoder.encoder.layer.0.intermediate.dense.weight"]
    except KeyError as err:
        raise PlipbenchError(
            f"{source}: {TEXT_KEY} is not a BertModel state dict under 'encoder.': missing key {err}"
        ) from None
    layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.encoder\.layer\.(\d+)\.", k))}
    hidden = int(word.shape[1])
    return {
        "vocab_size": int(word.shape[0]),
        "hidden_size": hidden,
        "num_hidden_layers": max(layers) + 1,
        "num_attention_heads": max(1, hidden // 64),
        "intermediate_size": int(inter.shape[0]),
        "max_position_embeddings": int(pos.shape[0]),
        "type_vocab_size": int(types.shape[0]),
    }


def official_config(bert: dict[str, Any]) -> PlipConfig:
    config = named_config("plip-rn50")
    return config.model_copy(
        update={"name": "plip-rn50-official", "text": TextEncoderConfig(bert=bert, pooling="pooler")}
    )


def load_official_checkpoint(path: str | Path) -> tuple[PlipModel, str]:
    """``(PlipModel with the released weights, sha256 of the file)``."""
    path = Path(path).expanduser()
    obj = load_weights_file(path)
    if not isinstance(obj, dict) or IMAGE_KEY not in obj or TEXT_KEY not in obj:
        found = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise PlipbenchError(
            f"{path}: not an official PLIP checkpoint: expected the keys {IMAGE_KEY!r} and {TEXT_KEY!r}, found {found}"
        )
    image_state, text_state = obj[IMAGE_KEY], obj[TEXT_KEY]
    text_state = {k: v for k, v in text_state.items() if k not in STALE_KEYS}
    model = PlipModel(official_config(bert_config_from_state(text_state, str(path))))
    problems = []
    for part, module, state in (("image", model.visual, image_state), ("text", model.text, text_state)):
        try:
            load_state_dict_strict(
                module, state, source=f"{path} [{IMAGE_KEY if part == 'image' else TEXT_KEY}]"
            )
        except PlipbenchError as err:
            problems.append(str(err))
    if problems:
        raise PlipbenchError(" | ".join(problems))
    return model, file_sha256(path)


def official_state_dicts(model: PlipModel) -> dict[str, dict[str, Any]]:
    """The released file's layout for ``model`` (used to write test fixtures and conversions)."""
    return {IMAGE_KEY: model.visual.state_dict(), TEXT_KEY: model.text.state_dict()}
