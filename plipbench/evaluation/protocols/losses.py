"""Losses of the fine-tune recipes that torch does not ship: batch-hard triplet (margin or soft margin).

Cross-entropy with label smoothing is torch's ``F.cross_entropy(label_smoothing=...)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def batch_hard_triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float | None,
                            *, normalize: bool = False) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) on euclidean distances, as in BoT / TransReID.

    For every anchor: the farthest same-id sample and the closest other-id sample. With a ``margin``:
    ``mean(relu(d_pos - d_neg + margin))`` (BoT's ``MarginRankingLoss``); ``margin=None`` is the soft
    margin ``mean(log(1 + exp(d_pos - d_neg)))`` (``SoftMarginLoss``). Anchors without a negative are
    skipped (0 when none has one). ``normalize``: L2-normalise the features first.

    Example::

        >>> import torch
        >>> f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]); y = torch.tensor([0, 0, 1])
        >>> round(float(batch_hard_triplet_loss(f, y, 0.3)), 4)   # anchors 0 and 1: relu(1 - 3 + .3), relu(1 - 3.16 + .3)
        0.0
    """
    import torch
    import torch.nn.functional as F

    features = features.float()
    if normalize:
        features = F.normalize(features, dim=1)
    squared = features.pow(2).sum(1)
    dist = (squared[:, None] + squared[None, :] - 2 * features @ features.t()).clamp_min(1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    hardest_pos = dist.masked_fill(~same, float("-inf")).max(1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(1).values
    has_neg = (~same).any(1)
    if not bool(has_neg.any()):
        return features.sum() * 0.0
    gap = hardest_pos[has_neg] - hardest_neg[has_neg]
    if margin is None:
        return F.softplus(gap).mean()
    return torch.relu(gap + margin).mean()


def sdm_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, pids: torch.Tensor, temperature: float,
             *, eps: float = 1e-8) -> torch.Tensor:
    """IRRA's similarity distribution matching (``model/objectives.py compute_sdm``): the KL divergence of the
    softmax of the cosine similarities at ``1 / temperature`` from the normalised same-identity distribution,
    image-to-text plus text-to-image, each averaged over the batch."""
    import torch
    import torch.nn.functional as F

    labels = (pids[:, None] == pids[None, :]).float()
    target = labels / labels.sum(dim=1, keepdim=True)
    cosine = F.normalize(text_emb.float(), dim=1) @ F.normalize(image_emb.float(), dim=1).t()
    loss = cosine.new_zeros(())
    for logits in (cosine.t() / temperature, cosine / temperature):
        pred = F.softmax(logits, dim=1)
        loss = loss + torch.mean(torch.sum(pred * (F.log_softmax(logits, dim=1) - torch.log(target + eps)), dim=1))
    return loss


def shared_id_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, labels: torch.Tensor,
                   classifier: torch.nn.Module) -> torch.Tensor:
    """IRRA's ID loss (``compute_id``): one classifier for both modalities, the mean of the two cross-entropies."""
    import torch.nn.functional as F

    return (F.cross_entropy(classifier(image_emb.float()), labels)
            + F.cross_entropy(classifier(text_emb.float()), labels)) / 2
