"""IAP, image-guided attribute prediction (PLIP §2.2, §A.6.3): masked *attribute phrases*.

Whole attribute phrases ("dark blue jacket") are masked in the caption, never random words. The
share of a caption's phrases that is masked follows a curriculum from 0.2 to 0.8 on a square-root
schedule (Tab. 16b); each phrase is masked independently with that probability and at least one
phrase of every caption that has phrases is masked, so every caption contributes to the loss.

The token states of the masked caption are fused with the colour image's global embedding
("concat": concatenate then a linear layer, the appendix and deleted v1 code - default; "sum": add
a projected image embedding, the main text), passed through transformer block(s), and a linear
layer predicts the WordPiece token at every masked position (cross-entropy over masked tokens).

Where the attribute phrases are: the synthetic generator records their character spans; for real
SYNTH-PEDES, :func:`locate_phrases` finds the six-slot attribute phrases in the caption.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = -100
_STOPWORDS = frozenset({"a", "an", "the", "and", "with", "of", "in", "on", "is", "has", "his", "her", "wearing"})


def mask_ratio(progress: float, *, low: float = 0.2, high: float = 0.8, schedule: str = "sqrt") -> float:
    """Masking ratio at training progress ``progress`` in [0, 1] (step / total steps)."""
    p = min(max(float(progress), 0.0), 1.0)
    ramps = {"sqrt": math.sqrt(p), "linear": p, "square": p * p, "constant": 0.0}
    if schedule not in ramps:
        raise ValueError(f"schedule must be one of {sorted(ramps)}, got {schedule!r}")
    return low + (high - low) * ramps[schedule]


def locate_phrases(caption: str, phrases: Sequence[str]) -> list[tuple[int, int, int]]:
    """Character spans ``(start, end, phrase_index)`` of attribute phrases found in ``caption``.

    A phrase is first searched whole (case-insensitive, on word boundaries); when it is not there
    (captions paraphrase), each of its content words is searched alone. ``"unknown"`` slots are
    skipped. Spans never overlap; the first match wins.
    """
    spans: list[tuple[int, int, int]] = []
    taken = [False] * len(caption)

    def claim(start: int, end: int, index: int) -> bool:
        if any(taken[start:end]):
            return False
        taken[start:end] = [True] * (end - start)
        spans.append((start, end, index))
        return True

    for index, phrase in enumerate(phrases):
        phrase = phrase.strip()
        if not phrase or phrase.lower() == "unknown":
            continue
        whole = re.search(rf"\b{re.escape(phrase)}\b", caption, flags=re.IGNORECASE)
        if whole and claim(whole.start(), whole.end(), index):
            continue
        for word in phrase.split():
            if len(word) < 3 or word.lower() in _STOPWORDS:
                continue
            for match in re.finditer(rf"\b{re.escape(word)}\b", caption, flags=re.IGNORECASE):
                if claim(match.start(), match.end(), index):
                    break
    return sorted(spans)


def token_phrase_index(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, int]]
) -> list[int]:
    """For each token (character ``offsets`` from a fast tokenizer), the index of the span it falls in, else -1.

    Special tokens have offsets (0, 0) and never belong to a phrase.
    """
    out = []
    for start, end in offsets:
        found = -1
        if end > start:
            for k, (s, e, _) in enumerate(spans):
                if start < e and end > s:
                    found = k
                    break
        out.append(found)
    return out


def mask_attribute_phrases(
    input_ids: Tensor, token_phrase: Tensor, ratio: float, mask_token_id: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Mask whole phrases. ``token_phrase`` (B, L) holds each token's phrase index or -1.

    Returns ``(masked_ids, labels)``; labels are the original ids at masked positions and
    ``IGNORE_INDEX`` elsewhere.
    """
    if input_ids.shape != token_phrase.shape:
        raise ValueError("input_ids and token_phrase must have the same shape")
    batch, _ = input_ids.shape
    n_phrases = int(token_phrase.max().item()) + 1 if token_phrase.numel() else 0
    if n_phrases == 0:
        return input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)
    chosen = torch.rand((batch, n_phrases), generator=generator) < ratio
    present = torch.zeros((batch, n_phrases), dtype=torch.bool)
    rows, cols = torch.nonzero(token_phrase >= 0, as_tuple=True)
    present[rows, token_phrase[rows, cols]] = True
    chosen &= present
    # every caption with phrases masks at least one: pick one at random where none was chosen
    need = present.any(dim=1) & ~chosen.any(dim=1)
    if need.any():
        scores = torch.rand((batch, n_phrases), generator=generator).masked_fill(~present, -1.0)
        pick = scores.argmax(dim=1)
        chosen[need, pick[need]] = True
    safe_index = token_phrase.clamp(min=0)
    mask = (token_phrase >= 0) & torch.gather(chosen, 1, safe_index)
    masked = input_ids.masked_fill(mask, mask_token_id)
    labels = input_ids.masked_fill(~mask, IGNORE_INDEX)
    return masked, labels


class AttributePredictionHead(nn.Module):
    """Fuse masked-caption token states with the image embedding, transformer block(s), vocabulary logits."""

    def __init__(
        self,
        text_dim: int,
        image_dim: int,
        vocab_size: int,
        *,
        hidden: int | None = None,
        layers: int = 1,
        heads: int = 4,
        fusion: str = "concat",
    ) -> None:
        super().__init__()
        if fusion not in ("concat", "sum"):
            raise ValueError(f"fusion must be 'concat' or 'sum', got {fusion!r}")
        hidden = hidden or text_dim
        self.fusion = fusion
        if fusion == "concat":
            self.fuse = nn.Linear(text_dim + image_dim, hidden)
        else:
            self.text_in = nn.Linear(text_dim, hidden)
            self.image_in = nn.Linear(image_dim, hidden)
        block = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=4 * hidden, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.predict = nn.Linear(hidden, vocab_size)

    def forward(
        self, token_states: Tensor, image_emb: Tensor, attention_mask: Tensor, select: Tensor | None = None
    ) -> Tensor:
        """Vocabulary logits ``(B, L, V)``, or ``(M, V)`` for the ``M`` positions where ``select`` (B, L) is
        true - the masked tokens, so the vocabulary projection is not paid for every other token."""
        image = image_emb.to(token_states.dtype)[:, None, :].expand(-1, token_states.shape[1], -1)
        if self.fusion == "concat":
            x = self.fuse(torch.cat([token_states, image], dim=2))
        else:
            x = self.text_in(token_states) + self.image_in(image)
        x = self.blocks(x, src_key_padding_mask=~attention_mask.bool())
        if select is not None:
            x = x[select]
        return self.predict(self.norm(x))


def attribute_prediction_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy averaged over masked tokens; zero (still differentiable) when nothing is masked."""
    if not (labels != IGNORE_INDEX).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)
