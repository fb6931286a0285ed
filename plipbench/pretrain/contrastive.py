"""Vision-language contrastive objectives: IVLC (identity-based, CMPM form) and CLIP (instance InfoNCE).

IVLC follows PLIP §2.3 in the form PLIP says it adopts, CMPM (Zhang & Lu, ECCV 2018), as the
released CMPM/C code implements it:

* logits ``image_emb @ normalize(text_emb).T`` - the *unnormalised* embedding norm acts as a
  learned scale, there is no explicit temperature;
* the true matching distribution puts equal mass on every text of the same identity
  (``q_ij = y_ij / sum_k y_ik``), not only on the paired caption;
* loss ``KL(p || q)`` with ``eps = 1e-8`` inside the log of ``q``, summed over the batch row,
  averaged over rows, and added for both directions (image->text and text->image).

CLIP is the instance-level symmetric InfoNCE over L2-normalised embeddings with a learned
temperature (``logit_scale`` = log(1/0.07) at init, clamped at log(100) as in CLIP).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_batch(image_emb: Tensor, text_emb: Tensor) -> None:
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape != text_emb.shape:
        raise ValueError(
            f"image_emb and text_emb must both be (N, D) with the same shape, got "
            f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )


def identity_contrastive_loss(
    image_emb: Tensor, text_emb: Tensor, pids: Tensor, *, eps: float = 1e-8, logit_scale: Tensor | None = None
) -> Tensor:
    """IVLC / CMPM loss for N image-text pairs whose identities are ``pids`` (shape (N,)).

    Pairs with the same pid are positives whether or not they are the same pair. Returns a scalar.

    ``logit_scale=None`` is CMPM (unnormalised embedding against the normalised other one). With a
    ``logit_scale`` (a learned temperature, as in CLIP) the logits are ``scale * cos(image, text)``
    in both directions: the same identity-level KL objective, but the softmax cannot saturate when
    the embedding norms grow (with CMPM a large image norm makes p one-hot and its gradient vanish).
    """
    _check_batch(image_emb, text_emb)
    if pids.shape != (image_emb.shape[0],):
        raise ValueError(f"pids must have shape ({image_emb.shape[0]},), got {tuple(pids.shape)}")
    image_emb = image_emb.float()
    text_emb = text_emb.float()
    same = (pids[:, None] == pids[None, :]).float()
    true_dist = same / same.sum(dim=1, keepdim=True)
    log_true = torch.log(true_dist + eps)

    if logit_scale is None:
        image_to_text = image_emb @ F.normalize(text_emb, dim=1).t()
        text_to_image = text_emb @ F.normalize(image_emb, dim=1).t()
    else:
        image_to_text = logit_scale * F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).t()
        text_to_image = image_to_text.t()
    loss = 0.0
    for logits in (image_to_text, text_to_image):
        log_pred = F.log_softmax(logits, dim=1)
        loss = loss + (log_pred.exp() * (log_pred - log_true)).sum(dim=1).mean()
    return loss


class LogitScale(nn.Module):
    """CLIP's learned temperature, stored as log(1/T) and clamped at log(100)."""

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log = math.log(max_scale)

    def forward(self) -> Tensor:
        return self.value.clamp(max=self.max_log).exp()


def clip_contrastive_loss(image_emb: Tensor, text_emb: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric instance-level InfoNCE: pair i is the only positive of row i and column i."""
    _check_batch(image_emb, text_emb)
    logits = logit_scale * F.normalize(image_emb.float(), dim=1) @ F.normalize(text_emb.float(), dim=1).t()
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
