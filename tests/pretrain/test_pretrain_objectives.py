from __future__ import annotations

import math

import pytest
import torch

from plipbench.pretrain.attribute_prediction import (
    IGNORE_INDEX,
    AttributePredictionHead,
    attribute_prediction_loss,
    locate_phrases,
    mask_attribute_phrases,
    mask_ratio,
    token_phrase_index,
)
from plipbench.pretrain.colorization import ColorizationDecoder, colorization_loss, to_grayscale
from plipbench.pretrain.contrastive import LogitScale, clip_contrastive_loss, identity_contrastive_loss


def test_cmpm_hand_computed_distinct_identities() -> None:
    emb = torch.eye(2)
    # logits = I, p_row = softmax([1, 0]); q_row = [1, 0]
    p_hit, p_miss = math.e / (math.e + 1), 1 / (math.e + 1)
    kl = p_hit * (math.log(p_hit) - math.log(1 + 1e-8)) + p_miss * (math.log(p_miss) - math.log(1e-8))
    loss = identity_contrastive_loss(emb, emb, torch.tensor([3, 7]))
    assert loss.item() == pytest.approx(2 * kl, rel=1e-5)


def test_cmpm_same_identity_makes_every_text_a_positive() -> None:
    emb = torch.eye(2)
    p_hit, p_miss = math.e / (math.e + 1), 1 / (math.e + 1)
    q = 0.5 + 1e-8
    kl = p_hit * (math.log(p_hit) - math.log(q)) + p_miss * (math.log(p_miss) - math.log(q))
    loss = identity_contrastive_loss(emb, emb, torch.tensor([5, 5]))
    assert loss.item() == pytest.approx(2 * kl, rel=1e-5)
    # identical rows: the uniform prediction matches q exactly
    same = torch.ones(2, 3)
    assert identity_contrastive_loss(same, same, torch.tensor([1, 1])).item() == pytest.approx(0.0, abs=1e-6)


def test_cmpm_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        identity_contrastive_loss(torch.zeros(2, 3), torch.zeros(3, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="pids"):
        identity_contrastive_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1, 2]))


def test_clip_loss_hand_computed() -> None:
    emb = torch.eye(3)
    scale = torch.tensor(2.0)
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert clip_contrastive_loss(emb, emb, scale).item() == pytest.approx(expected, rel=1e-5)
    assert LogitScale()().item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_mask_ratio_schedule() -> None:
    assert mask_ratio(0.0) == pytest.approx(0.2)
    assert mask_ratio(1.0) == pytest.approx(0.8)
    assert mask_ratio(0.25) == pytest.approx(0.5)  # sqrt(0.25) = 0.5
    assert mask_ratio(0.25, schedule="linear") == pytest.approx(0.35)
    assert mask_ratio(2.0) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="schedule"):
        mask_ratio(0.5, schedule="cosine")


def test_locate_phrases_whole_then_words() -> None:
    caption = "A man with black hair wears a shirt that is red and blue jeans."
    phrases = ["man", "black hair", "red shirt", "blue jeans", "unknown"]
    spans = locate_phrases(caption, phrases)
    found = [(caption[s:e], k) for s, e, k in spans]
    assert ("man", 0) in found and ("black hair", 1) in found and ("blue jeans", 3) in found
    assert ("shirt", 2) in found and ("red", 2) in found
    assert all(k != 4 for _, k in found)


def test_token_phrase_index_and_masking() -> None:
    offsets = [(0, 0), (0, 1), (2, 5), (6, 11), (12, 16), (0, 0)]  # [CLS] a man black hair [SEP]
    spans = [(2, 5, 0), (6, 16, 1)]
    assert token_phrase_index(offsets, spans) == [-1, -1, 0, 1, 1, -1]

    ids = torch.tensor([[101, 5, 6, 7, 8, 102]])
    token_phrase = torch.tensor([[-1, -1, 0, 1, 1, -1]])
    gen = torch.Generator().manual_seed(0)
    masked, labels = mask_attribute_phrases(ids, token_phrase, 1.0, 103, gen)
    assert masked.tolist() == [[101, 5, 103, 103, 103, 102]]
    assert labels.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 6, 7, 8, IGNORE_INDEX]]
    # ratio 0 still masks exactly one whole phrase per caption
    for seed in range(5):
        masked, labels = mask_attribute_phrases(ids, token_phrase, 0.0, 103, torch.Generator().manual_seed(seed))
        hit = (masked == 103)[0].tolist()
        assert hit in ([False, False, True, False, False, False], [False, False, False, True, True, False])
    # a caption without phrases masks nothing
    masked, labels = mask_attribute_phrases(ids, torch.full_like(ids, -1), 0.9, 103, gen)
    assert torch.equal(masked, ids) and (labels == IGNORE_INDEX).all()


def test_colorization_decoder_restores_input_size() -> None:
    torch.manual_seed(0)
    h, w = 64, 32
    maps = [torch.randn(2, c, h // s, w // s) for c, s in zip((8, 16, 32, 64), (4, 8, 16, 32), strict=True)]
    decoder = ColorizationDecoder((8, 16, 32, 64), text_dim=12, neck_dim=8)
    out = decoder(maps, torch.randn(2, 12))
    assert out.shape == (2, 3, h, w)
    loss = colorization_loss(out, torch.zeros(2, 3, h, w))
    loss.backward()
    assert decoder.se1.fc[0].weight.grad is not None


def test_colorization_loss_is_the_per_image_euclidean_distance() -> None:
    target = torch.zeros(2, 3, 4, 2)
    predicted = torch.zeros(2, 3, 4, 2)
    predicted[0] = 1.0  # image 0: 24 values off by 1 -> distance sqrt(24); image 1: exact
    predicted[1, 0, 0, 0] = 3.0  # image 1: one value off by 3 -> distance 3
    expected = (24**0.5 + 3.0) / 2
    assert colorization_loss(predicted, target) == pytest.approx(expected, rel=1e-6)
    assert colorization_loss(predicted, target, "mse") == pytest.approx((24 + 9) / 48, rel=1e-6)
    with pytest.raises(ValueError, match="distance"):
        colorization_loss(predicted, target, "l1")


def test_to_grayscale_is_gray_and_normalised() -> None:
    mean, std = (0.357, 0.323, 0.328), (0.252, 0.242, 0.239)
    rgb = torch.rand(1, 3, 4, 2)
    normed = (rgb - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    gray = to_grayscale(normed, mean, std) * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    assert torch.allclose(gray[0, 0], gray[0, 1]) and torch.allclose(gray[0, 1], gray[0, 2])
    expected = 0.299 * rgb[0, 0] + 0.587 * rgb[0, 1] + 0.114 * rgb[0, 2]
    assert torch.allclose(gray[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_attribute_head_predicts_vocabulary(fusion: str) -> None:
    torch.manual_seed(0)
    head = AttributePredictionHead(16, 8, vocab_size=50, hidden=16, heads=2, fusion=fusion)
    logits = head(torch.randn(2, 5, 16), torch.randn(2, 8), torch.ones(2, 5, dtype=torch.bool))
    assert logits.shape == (2, 5, 50)
    labels = torch.full((2, 5), IGNORE_INDEX)
    assert attribute_prediction_loss(logits, labels).item() == 0.0
    labels[0, 2] = 7
    loss = attribute_prediction_loss(logits, labels)
    assert loss.item() > 0
    loss.backward()


def test_ivlc_cosine_logits_hand_computed() -> None:
    emb = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # norms differ: cosine logits ignore them
    scale = torch.tensor(2.0)
    p_hit, p_miss = math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)
    kl = p_hit * (math.log(p_hit) - math.log(1 + 1e-8)) + p_miss * (math.log(p_miss) - math.log(1e-8))
    loss = identity_contrastive_loss(emb, emb, torch.tensor([0, 1]), logit_scale=scale)
    assert loss.item() == pytest.approx(2 * kl, rel=1e-5)
