"""Backbone profiles for the recipe tests: a ResNet-50 and a ViT-B/16 built from timm without weights, and
the person-pretrained / text-capable backbones as profiles derived from them (no weights, no downloads)."""

from __future__ import annotations

import pytest

from plipbench.models.metadata import CLIP_MEAN, CLIP_STD, SYNTH_PEDES_MEAN, SYNTH_PEDES_STD
from plipbench.recipes.backbones import BackboneProfile, profile_backbone


@pytest.fixture(scope="session")
def resnet50() -> BackboneProfile:
    return profile_backbone("timm:resnet50")


@pytest.fixture(scope="session")
def vit_b() -> BackboneProfile:
    return profile_backbone("timm:vit_base_patch16_224")


@pytest.fixture(scope="session")
def plip_rn50(resnet50: BackboneProfile) -> BackboneProfile:
    """PLIP RN50's facts: a ModifiedResNet-50 with an attention pool and a BERT text tower."""
    return resnet50.model_copy(update={
        "spec": "plip-rn50-official", "name": "plip-rn50-official", "modalities": ("image", "text"),
        "training_data": ("SYNTH-PEDES",), "mean": SYNTH_PEDES_MEAN, "std": SYNTH_PEDES_STD, "attention_pool": True,
    })  # fmt: skip


@pytest.fixture(scope="session")
def clip_vit_b(vit_b: BackboneProfile) -> BackboneProfile:
    """CLIP ViT-B/16's facts: a ViT-B/16 image tower and a text tower, CLIP mean/std."""
    return vit_b.model_copy(update={
        "spec": "clip-vit-b16", "name": "clip-vit-b16", "modalities": ("image", "text"),
        "training_data": ("WebImageText-400M",), "mean": CLIP_MEAN, "std": CLIP_STD,
    })  # fmt: skip


@pytest.fixture(scope="session")
def pass_vit_b(vit_b: BackboneProfile) -> BackboneProfile:
    """A LUPerson self-supervised ViT-B (PASS, TransReID-SSL)."""
    return vit_b.model_copy(
        update={"spec": "pass-vit-b", "name": "pass-vit-b", "training_data": ("LUPerson",)}
    )


def _solider(name: str, parameters: int) -> BackboneProfile:
    return BackboneProfile(
        spec=name, name=name, architecture="swin", modalities=("image",), parameters=parameters,
        training_data=("LUPerson",), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_size=(384, 128),
    )  # fmt: skip


@pytest.fixture(scope="session")
def swin_b() -> BackboneProfile:
    return _solider("solider-swin-b", 86_761_912)


@pytest.fixture(scope="session")
def swin_t() -> BackboneProfile:
    return _solider("solider-swin-t", 27_533_370)
