"""Every shipped recipe, resolved for a ResNet-50 and a ViT-B (and the backbones its variants are for),
against the reference values of ../shared/reference/downstream-recipes.md, value by value.

The expected tables are written here from the document, not from the YAML files; each block names the
section it comes from. A recipe that does not fit one of the two backbones must refuse it.
"""

from __future__ import annotations

from typing import Any

import pytest

from plipbench.errors import ConfigError
from plipbench.models.metadata import CLIP_MEAN, IMAGENET_MEAN, IMAGENET_STD, SYNTH_PEDES_MEAN
from plipbench.recipes import recipe_names, resolve_recipe

HALF = (0.5, 0.5, 0.5)

# §1.1 (BoT table) and §9.1 "The bot recipe, in full", for an ImageNet ResNet-50 (§9.2 CNN column)
BOT_RESNET50 = {
    "recipe.input.size": (256, 128),
    "recipe.input.train_interpolation": "bilinear",
    "recipe.input.test_interpolation": "bilinear",
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "recipe.augment.flip": 0.5,
    "recipe.augment.pad": 10,
    "recipe.augment.random_crop": True,
    "recipe.augment.random_erasing.probability": 0.5,
    "recipe.augment.random_erasing.area": (0.02, 0.4),
    "recipe.augment.random_erasing.aspect": (0.3, 1 / 0.3),
    "recipe.augment.random_erasing.fill": "zero",  # §9.1: fill 0 in normalised space
    "recipe.augment.random_erasing.attempts": 100,
    "recipe.sampler.kind": "identity",
    "recipe.sampler.batch_size": 64,
    "recipe.sampler.instances": 4,
    "recipe.sampler.replacement": True,
    "recipe.optimizer.name": "adam",
    "recipe.optimizer.betas": (0.9, 0.999),
    "recipe.optimizer.lr": 3.5e-4,
    "recipe.optimizer.weight_decay": 5e-4,
    "recipe.optimizer.coupled_l2": True,
    "recipe.optimizer.bias_lr_factor": 1.0,
    "recipe.optimizer.bias_weight_decay": 5e-4,
    "recipe.warmup.epochs": 10,
    "recipe.warmup.start_factor": 0.01,
    "recipe.schedule.kind": "multistep",
    "recipe.schedule.milestones": (40, 70),
    "recipe.schedule.gamma": 0.1,
    "recipe.epochs": 120,
    "recipe.losses.ce.label_smoothing": 0.1,
    "recipe.losses.ce.feature": "after-bn",
    "recipe.losses.ce.weight": 1.0,
    "recipe.losses.triplet.margin": 0.3,
    "recipe.losses.triplet.normalize": False,
    "recipe.losses.triplet.feature": "before-bn",
    "recipe.losses.triplet.weight": 1.0,
    "recipe.losses.center.enabled": False,
    "recipe.losses.center.weight": 5e-4,
    "recipe.losses.center.lr": 0.5,
    "recipe.neck.kind": "bnneck",
    "recipe.neck.frozen_bias": True,
    "recipe.neck.classifier_bias": False,
    "recipe.neck.classifier_init_std": 0.001,
    "recipe.last_stride": 1,
    "recipe.test.feature": "after-bn",
    "recipe.test.normalize": True,
    "recipe.test.flip": False,
    "recipe.test.rerank.enabled": False,
    "recipe.test.rerank.k1": 20,
    "recipe.test.rerank.k2": 6,
    "recipe.test.rerank.lambda_value": 0.3,
    "recipe.selection.checkpoint": "last",
    "recipe.selection.split": "val",
    "recipe.precision": "fp32",
    "feature": "global average pool of the last stage",
    "position_grid": None,
}

# §2.1 (TransReID ViT-B baseline table) and §9.1 (image-reid, ViT or Swin), for an ImageNet ViT-B/16
TRANSREID_VIT_B = {
    "recipe.input.size": (256, 128),
    "recipe.input.train_interpolation": "bicubic",
    "recipe.input.test_interpolation": "bilinear",
    "mean": HALF,
    "std": HALF,
    "recipe.augment.flip": 0.5,
    "recipe.augment.pad": 10,
    "recipe.augment.random_crop": True,
    "recipe.augment.random_erasing.probability": 0.5,
    "recipe.augment.random_erasing.area": (0.02, 1 / 3),
    "recipe.augment.random_erasing.aspect": (0.3, 1 / 0.3),
    "recipe.augment.random_erasing.fill": "pixel",
    "recipe.augment.random_erasing.max_count": 1,
    "recipe.sampler.kind": "identity",
    "recipe.sampler.batch_size": 64,
    "recipe.sampler.instances": 4,
    "recipe.optimizer.name": "sgd",
    "recipe.optimizer.momentum": 0.9,
    "recipe.optimizer.lr": 8e-3,
    "recipe.optimizer.weight_decay": 1e-4,
    "recipe.optimizer.bias_lr_factor": 2.0,
    "recipe.optimizer.bias_weight_decay": 1e-4,
    "recipe.warmup.epochs": 5,
    "recipe.warmup.start_factor": 0.01,
    "recipe.schedule.kind": "cosine",
    "recipe.schedule.min_factor": 0.002,
    "recipe.schedule.over": "all",  # "t_initial 120 (warm-up inside the cosine)"
    "recipe.epochs": 120,
    "recipe.precision": "amp",
    "recipe.drop_path": 0.1,
    "recipe.losses.ce.label_smoothing": 0.0,
    "recipe.losses.ce.weight": 1.0,
    "recipe.losses.triplet.margin": None,  # soft margin
    "recipe.losses.triplet.feature": "before-bn",
    "recipe.losses.triplet.weight": 1.0,
    "recipe.losses.center": None,
    "recipe.neck.kind": "bnneck",
    "recipe.neck.frozen_bias": True,
    "recipe.neck.classifier_bias": False,
    "recipe.last_stride": None,
    "recipe.position_embedding.resample": True,
    "position_grid": (16, 8),  # 14x14 -> 16x8 at 256x128, stride 16 (§9.2)
    "recipe.test.feature": "before-bn",
    "recipe.test.normalize": True,
    "recipe.test.flip": False,
    "recipe.test.rerank.enabled": False,
    "recipe.test.rerank.k1": 50,
    "recipe.test.rerank.k2": 15,
    "recipe.test.rerank.lambda_value": 0.3,
    "recipe.selection.checkpoint": "last",
    "feature": "class token",
    "variants": (),
}

# §3.2 (PLIP's CMPM/C) and §9.1 (text-reid, PLIP-style RN + BERT), for PLIP's ResNet-50 + BERT
PLIP_CMPMC_RN50 = {
    "recipe.input.size": (256, 128),
    "recipe.input.train_interpolation": "bicubic",
    "mean": SYNTH_PEDES_MEAN,
    "recipe.input.text_length": 64,
    "recipe.augment.flip": 0.5,
    "recipe.augment.pad": 0,
    "recipe.augment.random_erasing": None,
    "recipe.augment.captions": "each",
    "recipe.sampler.kind": "random",
    "recipe.sampler.batch_size": 128,
    "recipe.optimizer.name": "adan",
    "recipe.optimizer.betas": (0.98, 0.92, 0.99),
    "recipe.optimizer.eps": 1e-8,
    "recipe.optimizer.weight_decay": 0.02,
    "recipe.optimizer.lr": 1e-4,
    "recipe.losses.cmpc.classifier_lr_factor": 10.0,  # 1e-3 for the CMPC classifier
    "recipe.losses.cmpm.eps": 1e-8,
    "recipe.losses.cmpm.weight": 1.0,
    "recipe.losses.cmpc.weight": 1.0,
    "recipe.schedule.kind": "multistep",
    "recipe.schedule.milestones": (20,),
    "recipe.schedule.gamma": 0.1,
    "recipe.epochs": 30,
    "recipe.test.feature": "embedding",
    "recipe.test.normalize": True,
    "recipe.selection.split": "val",  # plipbench: never on test by default
    "paper_compatible": False,
}

# §3.1 (IRRA table) and §9.1 (text-reid, CLIP-style dual encoders), for CLIP ViT-B/16
IRRA_CLIP_VIT_B = {
    "recipe.input.size": (384, 128),
    "position_grid": (24, 8),
    "recipe.input.text_length": 77,
    "mean": CLIP_MEAN,
    "recipe.augment.flip": 0.5,
    "recipe.augment.pad": 10,
    "recipe.augment.random_crop": True,
    "recipe.augment.random_erasing.probability": 0.5,
    "recipe.augment.random_erasing.area": (0.02, 0.4),
    "recipe.augment.random_erasing.aspect": (0.3, 3.3),
    "recipe.augment.random_erasing.fill": "normalization-mean",
    "recipe.sampler.kind": "random",
    "recipe.sampler.batch_size": 64,
    "recipe.optimizer.name": "adam",
    "recipe.optimizer.betas": (0.9, 0.999),
    "recipe.optimizer.eps": 1e-3,
    "recipe.optimizer.lr": 1e-5,
    "recipe.optimizer.weight_decay": 4e-5,
    "recipe.optimizer.bias_lr_factor": 2.0,
    "recipe.optimizer.bias_weight_decay": 0.0,
    "recipe.warmup.epochs": 5,
    "recipe.warmup.start_factor": 0.1,
    "recipe.schedule.kind": "cosine",
    "recipe.schedule.min_factor": 0.0,
    "recipe.schedule.over": "after-warmup",
    "recipe.epochs": 60,
    "recipe.losses.sdm.temperature": 0.02,
    "recipe.losses.sdm.learnable_temperature": False,
    "recipe.losses.sdm.weight": 1.0,
    "recipe.losses.id.weight": 1.0,
    "recipe.losses.mlm.weight": 1.0,
    "recipe.losses.mlm.mask_ratio": 0.15,
    "recipe.losses.mlm.cross_modal_layers": 4,
    "recipe.test.feature": "embedding",
    "recipe.selection.split": "val",
}

# §4.1 (Rethinking_of_PAR table) and §9.1 (attributes, CNN, with the plipbench val change), ResNet-50
RETHINKING_RESNET50 = {
    "recipe.input.size": (256, 192),
    "mean": IMAGENET_MEAN,
    "recipe.augment.flip": 0.5,
    "recipe.augment.pad": 10,
    "recipe.augment.random_crop": True,
    "recipe.augment.random_erasing": None,
    "recipe.sampler.kind": "random",
    "recipe.sampler.batch_size": 64,
    "recipe.sampler.drop_last": True,
    "recipe.optimizer.name": "adam",
    "recipe.optimizer.coupled_l2": True,
    "recipe.optimizer.lr": 1e-4,
    "recipe.optimizer.weight_decay": 5e-4,
    "recipe.optimizer.bias_weight_decay": 5e-4,
    "recipe.optimizer.rules": (),  # LR_NEW = LR_FT: no x10 for the head
    "recipe.warmup": None,
    "recipe.schedule.kind": "plateau",
    "recipe.schedule.factor": 0.1,
    "recipe.schedule.patience": 4,
    "recipe.epochs": 30,
    "recipe.losses.bce.weighting": "exp-ratio",
    "recipe.losses.bce.reduction": "sum-attributes-mean-batch",
    "recipe.neck.logits_bn": False,
    "recipe.last_stride": 2,
    "recipe.grad_clip.max_norm": 10.0,
    "recipe.ema": None,  # EMA on PA-100K only
    "recipe.test.threshold": 0.5,
    "recipe.selection.split": "val",
    "recipe.selection.metric": "mA",
}

# §4.2 (SOLIDER-PAR) and §9.1 (attributes, transformers), for a ViT-B (PETAzs / RAPzs values)
SOLIDER_PAR_VIT_B = {
    "recipe.input.size": (256, 192),
    "recipe.optimizer.name": "adam",
    "recipe.optimizer.lr": 1e-5,
    "recipe.optimizer.weight_decay": 5e-4,
    "recipe.schedule.kind": "plateau",
    "recipe.epochs": 30,
    "recipe.losses.bce.weighting": "exp-ratio",
    "recipe.neck.logits_bn": False,
    "recipe.grad_clip.max_norm": 10.0,
    "recipe.last_stride": None,
    "recipe.selection.split": "val",
}

EXPECTED = {
    ("bot", "resnet50"): BOT_RESNET50,
    ("transreid", "vit_b"): TRANSREID_VIT_B,
    ("plip-cmpmc", "plip_rn50"): PLIP_CMPMC_RN50,
    ("irra", "clip_vit_b"): IRRA_CLIP_VIT_B,
    ("rethinking", "resnet50"): RETHINKING_RESNET50,
    ("solider-par", "vit_b"): SOLIDER_PAR_VIT_B,
}
# the ResNet-50 or ViT-B that each recipe must refuse, and why (the error names it)
MISFITS = {
    ("bot", "vit_b"): "is for cnn backbones",
    ("transreid", "resnet50"): "is for vit/swin backbones",
    ("plip-cmpmc", "resnet50"): "has no text encoder",
    ("plip-cmpmc", "vit_b"): "is for cnn backbones",
    ("irra", "resnet50"): "is for vit backbones",
    ("irra", "vit_b"): "has no text encoder",
    ("rethinking", "vit_b"): "is for cnn backbones",
    ("solider-par", "resnet50"): "is for swin/vit backbones",
}


def value_at(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = getattr(data, part)
    return data


def same(got: Any, expected: Any) -> bool:
    """Equal, with float tolerance (1/0.3 is written 3.3333333333 in the YAML)."""
    got = tuple(got) if isinstance(got, list) else got
    numbers = expected if isinstance(expected, tuple) else (expected,)
    if (
        numbers
        and all(isinstance(v, float) for v in numbers)
        or isinstance(expected, tuple)
        and any(isinstance(v, float) for v in numbers)
    ):
        return got == pytest.approx(expected, rel=1e-6)
    return got == expected


def test_every_shipped_recipe_is_checked_against_the_document() -> None:
    assert {name for name, _ in EXPECTED} == set(recipe_names())
    assert {name for name, _ in MISFITS} <= set(recipe_names())


@pytest.mark.parametrize(("recipe", "backbone"), sorted(EXPECTED))
def test_resolved_recipe_matches_the_reference_table(recipe: str, backbone: str, request) -> None:
    resolved = resolve_recipe(recipe, request.getfixturevalue(backbone))
    expected = EXPECTED[recipe, backbone]
    wrong = {
        key: (value_at(resolved, key), want)
        for key, want in expected.items()
        if not same(value_at(resolved, key), want)
    }
    assert not wrong, wrong
    assert not resolved.short_run and resolved.overrides == {}


@pytest.mark.parametrize(("recipe", "backbone"), sorted(MISFITS))
def test_recipe_refuses_a_backbone_it_does_not_fit(recipe: str, backbone: str, request) -> None:
    profile = request.getfixturevalue(backbone)
    with pytest.raises(ConfigError, match=MISFITS[recipe, backbone]) as err:
        resolve_recipe(recipe, profile)
    assert "\n" not in str(err.value) and profile.spec in str(err.value)


def test_transreid_person_pretrained_and_swin_variants(pass_vit_b, swin_b, swin_t, clip_vit_b) -> None:
    # §2.2-2.4 and §9.2: SSL / PASS ViT 4e-4 with 20 warm-up epochs; SOLIDER Swin-B/S 2e-4 and Swin-T 8e-4,
    # 20 warm-up epochs, 384x128; CLIP ViT 4e-4 (the doc's guess) with CLIP mean/std
    vit = resolve_recipe("transreid", pass_vit_b)
    assert vit.variants == ("person-pretrained-vit",)
    assert (vit.recipe.optimizer.lr, vit.recipe.warmup.epochs, vit.recipe.input.size) == (
        4e-4,
        20,
        (256, 128),
    )
    base = resolve_recipe("transreid", swin_b)
    assert base.variants == ("swin", "solider") and base.recipe.position_embedding is None
    assert base.position_grid is None
    assert base.recipe.backbone_args == {"semantic_weight": 0.2}  # SOLIDER-REID's semantic weight (§2.4)
    assert (base.recipe.optimizer.lr, base.recipe.warmup.epochs, base.recipe.input.size) == (
        2e-4,
        20,
        (384, 128),
    )
    assert base.feature == "average pool of the last stage" and base.mean == HALF
    tiny = resolve_recipe("transreid", swin_t)
    assert tiny.variants == ("swin", "solider", "swin-tiny") and tiny.recipe.optimizer.lr == 8e-4
    clip = resolve_recipe("transreid", clip_vit_b)
    assert clip.recipe.optimizer.lr == 4e-4 and clip.mean == CLIP_MEAN


def test_dataset_and_solider_values(resnet50, vit_b, swin_b) -> None:
    # §4.1: EMA 0.9998 on PA-100K only; §4.2: SOLIDER-PAR PA-100K 256x128 with wd 0, PETAzs MultiStep [10, 15]
    assert resolve_recipe("rethinking", resnet50, dataset="pa100k").recipe.ema.decay == 0.9998
    assert resolve_recipe("rethinking", resnet50, dataset="peta").recipe.ema is None
    pa100k = resolve_recipe("solider-par", vit_b, dataset="pa100k").recipe
    assert pa100k.input.size == (256, 128) and pa100k.optimizer.weight_decay == 0.0
    assert resolve_recipe("solider-par", swin_b).recipe.backbone_args == {"semantic_weight": 0.8}  # §4.2
    assert resolve_recipe("solider-par", vit_b).recipe.backbone_args == {}
    peta = resolve_recipe("solider-par", vit_b, dataset="peta").recipe
    assert peta.schedule.kind == "multistep" and peta.schedule.milestones == (10, 15)


def test_plip_modified_resnet_uses_the_average_pool(plip_rn50) -> None:
    # §9.2: BoT on a ModifiedResNet takes the GAP of layer4, not the attention pool
    resolved = resolve_recipe("bot", plip_rn50)
    assert resolved.recipe.last_stride == 1 and "attention pool is bypassed" in resolved.feature
    assert resolved.mean == SYNTH_PEDES_MEAN  # the backbone's own mean/std (§9.2)
