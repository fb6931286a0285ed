"""Losses of the fine-tune recipes that torch does not ship: batch-hard triplet (margin or soft margin), BoT's
centre loss with its own optimizer (:class:`CenterLoss`, :class:`CenterSGD`), IRRA's SDM and shared ID loss.

Cross-entropy with label smoothing is torch's ``F.cross_entropy(label_smoothing=...)``. The two centre-loss
classes are ``nn.Module`` / ``torch.optim.SGD`` subclasses built on first use (this module does not import
torch when it is imported).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

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


@functools.cache
def _center_classes() -> dict[str, type]:
    import torch

    class CenterLoss(torch.nn.Module):
        """BoT's centre loss (Wen et al. 2016; reid-strong-baseline ``layers/center_loss.py``): one learned centre
        per training identity, ``centers`` of shape ``(num_classes, dim)`` initialised ``randn`` (seed it), and
        ``loss = sum_i clamp(||x_i - c_{y_i}||^2, 1e-12, 1e12) / batch``. The reference clamps the whole masked
        distance matrix, which adds ``(num_classes - 1) * 1e-12`` per sample and no gradient; that constant is
        left out. The recipe multiplies the loss by its weight (5e-4) and steps the centres with
        :class:`CenterSGD`, not with the model's optimizer."""

        def __init__(self, num_classes: int, dim: int) -> None:
            super().__init__()
            self.num_classes, self.dim = int(num_classes), int(dim)
            self.centers = torch.nn.Parameter(torch.randn(self.num_classes, self.dim))

        def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            if features.ndim != 2 or features.shape[1] != self.dim:
                raise ValueError(f"centre loss expects (B, {self.dim}) features, got {tuple(features.shape)}")
            distance = (features.float() - self.centers[labels]).pow(2).sum(dim=1)
            return distance.clamp(min=1e-12, max=1e12).sum() / features.shape[0]

    class CenterSGD(torch.optim.SGD):
        """The centres' own optimizer (reid-strong-baseline ``make_optimizer_with_center``: plain SGD at
        ``lr`` 0.5, no momentum, no weight decay, no schedule). Before each step the centre gradients are
        multiplied by ``1 / loss_weight`` (``engine/trainer.py``: ``param.grad.data *= 1. / cetner_loss_weight``),
        so that the centres move as if the loss were unweighted while the backbone sees the weighted loss."""

        def __init__(self, params: Any, *, lr: float, loss_weight: float) -> None:
            if loss_weight <= 0:
                raise ValueError(f"loss_weight must be positive, got {loss_weight}")
            super().__init__(params, lr=lr)
            self.loss_weight = float(loss_weight)

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            for group in self.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        parameter.grad.mul_(1.0 / self.loss_weight)
            return super().step(closure)

    for cls in (CenterLoss, CenterSGD):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__  # picklable by name (module __getattr__)
    return {"CenterLoss": CenterLoss, "CenterSGD": CenterSGD}


def __getattr__(name: str) -> Any:
    if name in ("CenterLoss", "CenterSGD"):
        return _center_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
