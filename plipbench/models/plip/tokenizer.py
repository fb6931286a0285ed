"""WordPiece tokenizers trained with the ``tokenizers`` library, saved as BertTokenizerFast-compatible dirs.

Used when a PLIP model has no pretrained tokenizer (``random:plip-mini`` trains one on
:data:`PEDESTRIAN_SENTENCES`; the pre-training command trains one on the corpus captions).
Training is deterministic (see :func:`train_wordpiece` for how the vocabulary is chosen): the same texts in the same order give the same vocabulary. The
saved directory holds ``vocab.txt``, ``tokenizer.json`` and ``tokenizer_config.json`` and loads
with ``transformers.BertTokenizerFast.from_pretrained`` / ``AutoTokenizer``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from plipbench.errors import PlipbenchError
from plipbench.io import make_temp_dir

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_COLOURS = (
    "black",
    "white",
    "red",
    "blue",
    "green",
    "grey",
    "yellow",
    "brown",
    "pink",
    "purple",
    "orange",
    "dark",
)
_TOPS = ("t-shirt", "jacket", "shirt", "coat", "sweater", "hoodie", "dress", "blouse", "vest")
_BOTTOMS = ("trousers", "jeans", "shorts", "skirt", "pants", "leggings")
_SHOES = ("sneakers", "boots", "sandals", "shoes", "heels")
_CARRY = (
    "a backpack",
    "a handbag",
    "a shoulder bag",
    "an umbrella",
    "a phone",
    "nothing in her hands",
    "a suitcase",
)
_PEOPLE = ("man", "woman", "young man", "young woman", "boy", "girl", "person", "old man", "old woman")
_HAIR = ("short black hair", "long brown hair", "a ponytail", "curly hair", "a cap", "glasses", "a hat")
_ACTIONS = (
    "is walking",
    "is standing",
    "walks along the street",
    "is riding a bike",
    "is looking at the phone",
)


def pedestrian_sentences() -> list[str]:
    """A fixed, deterministic list of pedestrian descriptions in the style of CUHK-PEDES captions."""
    sentences = []
    for i in range(360):
        person = _PEOPLE[i % len(_PEOPLE)]
        top_c, bottom_c = _COLOURS[i % len(_COLOURS)], _COLOURS[(i * 5 + 3) % len(_COLOURS)]
        sentences.append(
            f"The {person} with {_HAIR[(i * 7) % len(_HAIR)]} {_ACTIONS[(i * 3) % len(_ACTIONS)]}, wearing a "
            f"{top_c} {_TOPS[(i * 11) % len(_TOPS)]} and {bottom_c} {_BOTTOMS[(i * 13) % len(_BOTTOMS)]} with "
            f"{_COLOURS[(i * 17) % len(_COLOURS)]} {_SHOES[i % len(_SHOES)]}. "
            f"The {person.split()[-1]} is carrying {_CARRY[(i * 19) % len(_CARRY)]}."
        )
    return sentences


PEDESTRIAN_SENTENCES: tuple[str, ...] = tuple(pedestrian_sentences())


def train_wordpiece(
    texts: Iterable[str], *, vocab_size: int = 2000, min_frequency: int = 1, lowercase: bool = True
) -> Any:
    """Build an uncased BERT-style WordPiece ``tokenizers.Tokenizer`` from ``texts``, deterministically.

    The ``tokenizers`` WordPiece *trainer* breaks ties between equally frequent merges in hash
    order, so two runs on the same texts give different vocabularies. Here the vocabulary is
    chosen explicitly instead: the special tokens, every character seen (as ``c`` and ``##c``, so
    nothing becomes ``[UNK]``), then whole words by decreasing frequency (ties alphabetical)
    until ``vocab_size``. Words outside the vocabulary are split greedily longest-match-first by
    the WordPiece model, as in BERT. Normalisation and pre-tokenisation are BERT's (``tokenizers``).
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    normalizer = normalizers.BertNormalizer(lowercase=lowercase, clean_text=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({ch for word in counts for ch in word})
    vocab_list = list(SPECIAL_TOKENS) + chars + [f"##{ch}" for ch in chars]
    seen = set(vocab_list)
    for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab_list) >= vocab_size or count < min_frequency:
            break
        if word not in seen:
            vocab_list.append(word)
            seen.add(word)
    vocab = {token: i for i, token in enumerate(vocab_list)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return tok


def save_tokenizer_dir(
    tok: Any, directory: str | Path, *, lowercase: bool = True, max_length: int = 64
) -> Path:
    """Write ``vocab.txt`` + ``tokenizer.json`` + ``tokenizer_config.json`` atomically (temp dir, then rename)."""
    directory = Path(directory)
    if directory.exists():
        raise PlipbenchError(f"tokenizer directory {directory} already exists")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(f".{directory.name}.", directory.parent)
    try:
        vocab = tok.get_vocab()
        (tmp / "vocab.txt").write_text(
            "".join(t + "\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]))
        )
        tok.save(str(tmp / "tokenizer.json"))
        config = {
            "tokenizer_class": "BertTokenizerFast",
            "do_lower_case": lowercase,
            "model_max_length": max_length,
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        }
        (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "special_tokens_map.json").write_text(
            json.dumps(
                {k: config[k] for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")}
            )
            + "\n"
        )
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load_tokenizer(directory: str | Path) -> Any:
    """A ``transformers`` fast BERT tokenizer from a local directory (never downloads)."""
    from transformers import AutoTokenizer

    directory = Path(directory).expanduser()
    if not directory.is_dir() or not any((directory / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        raise PlipbenchError(
            f"tokenizer directory {directory} not found or has no tokenizer.json / vocab.txt "
            "(pass tokenizer=DIR naming a saved BERT tokenizer, e.g. bert-base-uncased)"
        )
    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)


def train_tokenizer_dir(texts: Iterable[str], directory: str | Path, *, vocab_size: int = 2000) -> Path:
    """Train a WordPiece tokenizer on ``texts`` and save it to ``directory``."""
    return save_tokenizer_dir(train_wordpiece(texts, vocab_size=vocab_size), directory)
