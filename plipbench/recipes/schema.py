"""The typed form of a fine-tune recipe (pydantic, unknown keys rejected, frozen).

A recipe is the full hyper-parameter set of a reference fine-tune (BoT, TransReID, IRRA, ...): input
and augmentation, sampler, optimizer and its parameter groups, warm-up and schedule, epochs, losses
with their weights, neck, backbone-specific parts and test feature. Values live in the YAML files of
``plipbench/recipes/data/``, each with its source; this module only says what a value may be.

Conventions:
- ``size`` is (height, width); epochs are counted from 0 (``epoch`` 0 is the first epoch);
- a learning-rate *factor* multiplies the optimizer's base ``lr``;
- ``null`` switches a part off (``ema: null``, ``losses.center: null``);
- backbone-kind parts (``last_stride``, ``position_embedding``) are checked against the backbone
  when the recipe is resolved (:func:`plipbench.recipes.resolve_recipe`), not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from plipbench.models.metadata import Interpolation, Modality

Architecture = Literal["cnn", "vit", "swin"]
TaskKind = Literal["image-reid", "text-reid", "attributes"]
Normalization = Literal["backbone", "imagenet", "clip", "half", "synth-pedes"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Factor = Annotated[float, Field(gt=0.0, le=1.0)]


class RecipePart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ordered_pair(value: tuple[float, float], what: str) -> None:
    if value[0] > value[1]:
        raise ValueError(f"{what} must be (low, high) with low <= high, got {value}")


class Reference(RecipePart):
    """Where the values come from: the repository, commit and files they were read from."""

    repository: str
    commit: str
    files: tuple[str, ...] = ()
    reported: tuple[str, ...] = Field((), description="published numbers of the recipe, labelled 'reported'")


class InputSpec(RecipePart):
    size: tuple[PositiveInt, PositiveInt] = Field(description="(height, width) for training and test")
    train_interpolation: Interpolation = "bilinear"
    test_interpolation: Interpolation = "bilinear"
    normalize: Normalization = Field(
        "backbone", description="mean/std: 'backbone' uses the backbone's own, resolved per backbone"
    )
    text_length: PositiveInt | None = Field(None, description="tokens per caption (text recipes)")


class RandomErasingSpec(RecipePart):
    probability: Probability
    area: tuple[float, float] = Field(description="erased fraction of the image area, (low, high)")
    aspect: tuple[float, float] = Field(description="aspect ratio of the box, (low, high)")
    fill: Literal["zero", "pixel", "normalization-mean"] = Field(
        description="zero: 0 in normalised space (the mean colour); pixel: per-pixel N(0, 1) (timm mode "
        "'pixel'); normalization-mean: the mean values written into the normalised tensor (BoT, IRRA)"
    )
    max_count: PositiveInt = 1
    attempts: PositiveInt = Field(10, description="tries to place a box before giving up")

    @model_validator(mode="after")
    def _ranges(self) -> RandomErasingSpec:
        _ordered_pair(self.area, "area")
        _ordered_pair(self.aspect, "aspect")
        if not 0.0 < self.area[1] <= 1.0 or self.aspect[0] <= 0.0:
            raise ValueError(
                f"area must lie in (0, 1] and aspect be positive, got {self.area}, {self.aspect}"
            )
        return self


class AugmentSpec(RecipePart):
    flip: Probability = Field(0.0, description="horizontal-flip probability")
    pad: NonNegativeInt = Field(0, description="zero padding on each side before the random crop")
    random_crop: bool = Field(False, description="random crop back to the input size after padding")
    random_erasing: RandomErasingSpec | None = None
    captions: Literal["each"] | None = Field(
        None, description="text recipes: 'each' makes every (image, caption) pair one training sample"
    )

    @model_validator(mode="after")
    def _crop_needs_pad(self) -> AugmentSpec:
        if self.pad and not self.random_crop:
            raise ValueError("pad without random_crop changes the input size; set random_crop: true")
        return self


class SamplerSpec(RecipePart):
    kind: Literal["identity", "random"] = Field(
        description="identity: P identities x K images; random: shuffle"
    )
    batch_size: PositiveInt
    instances: PositiveInt | None = Field(None, description="K, images per identity (identity sampler)")
    replacement: bool = Field(False, description="identity sampler: draw K with replacement when fewer")
    drop_last: bool = False

    @model_validator(mode="after")
    def _shape(self) -> SamplerSpec:
        if self.kind == "identity":
            if self.instances is None or self.batch_size % self.instances:
                raise ValueError(
                    f"identity sampler: instances must divide batch_size, got {self.instances} and {self.batch_size}"
                )
        elif self.instances is not None or self.replacement:
            raise ValueError("random sampler: instances and replacement apply to the identity sampler only")
        return self

    @property
    def identities(self) -> int | None:
        """P, identities per batch (identity sampler)."""
        return self.batch_size // self.instances if self.instances else None


class ParamRule(RecipePart):
    """A parameter-group rule: parameters whose name contains one of ``match`` (and none of ``exclude``)
    get ``lr = base lr x lr_factor`` and/or ``weight_decay``. Rules apply in order after the bias rule;
    a later rule overrides an earlier one, as in the references' ``named_parameters`` loops."""

    match: tuple[str, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()
    lr_factor: PositiveFloat | None = None
    weight_decay: NonNegativeFloat | None = None


class OptimizerSpec(RecipePart):
    name: Literal["adam", "adamw", "sgd", "adan"]
    lr: PositiveFloat = Field(description="base learning rate")
    weight_decay: NonNegativeFloat
    coupled_l2: bool = Field(
        description="true: weight decay added to the gradient (Adam's and SGD's L2); false: decoupled (AdamW, Adan)"
    )
    betas: tuple[float, ...] | None = Field(
        None, description="Adam: 2 values, Adan: 3; null for the defaults"
    )
    eps: PositiveFloat | None = None
    momentum: float | None = Field(None, ge=0.0, lt=1.0, description="SGD momentum")
    nesterov: bool = False
    no_prox: bool = Field(False, description="Adan: weight decay as AdamW instead of the proximal step")
    bias_lr_factor: PositiveFloat = Field(1.0, description="lr factor of every parameter named '*bias*'")
    bias_weight_decay: NonNegativeFloat | None = Field(
        None, description="weight decay of biases; null: weight_decay"
    )
    rules: tuple[ParamRule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> OptimizerSpec:
        coupled = {"adam": True, "sgd": True, "adamw": False, "adan": False}[self.name]
        if self.coupled_l2 != coupled:
            raise ValueError(
                f"{self.name} has {'coupled' if coupled else 'decoupled'} weight decay: coupled_l2 must be "
                f"{str(coupled).lower()} (Adam with decoupled decay is adamw)"
            )
        n_betas = {"adam": 2, "adamw": 2, "adan": 3, "sgd": 0}[self.name]
        if self.betas is not None and len(self.betas) != n_betas:
            raise ValueError(f"{self.name} takes {n_betas} betas, got {list(self.betas)}")
        if (self.name == "sgd") != (self.momentum is not None):
            raise ValueError("momentum is required for sgd and only applies to it")
        if self.no_prox and self.name != "adan":
            raise ValueError("no_prox applies to adan only")
        return self


class WarmupSpec(RecipePart):
    """Linear warm-up of the lr factor from ``start_factor`` at step 0 to 1 at step ``epochs``:
    ``factor(t) = start_factor + (1 - start_factor) * t / epochs`` for ``t < epochs``."""

    epochs: PositiveInt
    start_factor: float = Field(ge=0.0, lt=1.0)
    method: Literal["linear"] = "linear"


class _Schedule(RecipePart):
    epoch_offset: Literal[0, 1] = Field(
        0,
        description="the scheduler's step count during the first epoch: 1 when the reference steps at the "
        "start of each epoch (BoT, TransReID), 0 when it steps at the end (IRRA, PLIP)",
    )
    floors: Literal["per-group", "base-lr"] = Field(
        "per-group",
        description="warm-up start and cosine floor of a param group whose lr differs from the base lr: "
        "per-group = factor x that group's lr; base-lr = factor x the base lr for every group (timm's "
        "CosineLRScheduler, whose warmup_lr_init and lr_min are absolute)",
    )


class ConstantSchedule(_Schedule):
    kind: Literal["constant"]


class MultiStepSchedule(_Schedule):
    kind: Literal["multistep"]
    milestones: tuple[PositiveInt, ...] = Field(min_length=1, description="steps at which the lr is x gamma")
    gamma: Factor = 0.1

    @model_validator(mode="after")
    def _sorted(self) -> MultiStepSchedule:
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones must increase, got {list(self.milestones)}")
        return self


class CosineSchedule(_Schedule):
    kind: Literal["cosine"]
    min_factor: float = Field(0.0, ge=0.0, lt=1.0, description="the lr floor as a factor of the lr")
    over: Literal["all", "after-warmup"] = Field(
        description="all: the cosine spans steps 0..epochs and the warm-up sits inside it (timm, "
        "warmup_prefix=False); after-warmup: it spans warm-up end..epochs (IRRA)"
    )


class PlateauSchedule(_Schedule):
    kind: Literal["plateau"]
    monitor: Literal["loss"] = Field("loss", description="the loss on the selection split (val by default)")
    factor: Factor = 0.1
    patience: NonNegativeInt = 4


Schedule = Annotated[
    ConstantSchedule | MultiStepSchedule | CosineSchedule | PlateauSchedule, Field(discriminator="kind")
]

NeckFeature = Literal["before-bn", "after-bn"]


class CrossEntropySpec(RecipePart):
    weight: PositiveFloat = 1.0
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    feature: NeckFeature = "after-bn"


class TripletSpec(RecipePart):
    weight: PositiveFloat = 1.0
    margin: PositiveFloat | None = Field(description="null: soft margin, log(1 + exp(d_ap - d_an))")
    mining: Literal["batch-hard"] = "batch-hard"
    normalize: bool = Field(False, description="L2-normalise the features before the distances")
    feature: NeckFeature = "before-bn"


class CenterSpec(RecipePart):
    enabled: bool = False
    weight: PositiveFloat
    lr: PositiveFloat = Field(description="lr of the centres' own SGD")
    feature: NeckFeature = "before-bn"


class CMPMSpec(RecipePart):
    weight: PositiveFloat = 1.0
    eps: PositiveFloat = 1e-8


class CMPCSpec(RecipePart):
    weight: PositiveFloat = 1.0
    classifier_lr_factor: PositiveFloat = Field(1.0, description="lr factor of the CMPC classifier")


class SDMSpec(RecipePart):
    weight: PositiveFloat = 1.0
    temperature: PositiveFloat
    learnable_temperature: bool = False


class IdentitySpec(RecipePart):
    weight: PositiveFloat = 1.0
    shared_classifier: bool = Field(True, description="one classifier for image and text features")


class MLMSpec(RecipePart):
    enabled: bool = True
    weight: PositiveFloat = 1.0
    mask_ratio: Probability = 0.15
    cross_modal_layers: PositiveInt = 4


class WeightedBCESpec(RecipePart):
    weight: PositiveFloat = 1.0
    weighting: Literal["exp-ratio", "none"] = Field(
        description="exp-ratio: w+ = exp(1 - r), w- = exp(r), r = the attribute's positive ratio in training"
    )
    reduction: Literal["sum-attributes-mean-batch", "mean"] = "sum-attributes-mean-batch"


class LossesSpec(RecipePart):
    ce: CrossEntropySpec | None = None
    triplet: TripletSpec | None = None
    center: CenterSpec | None = None
    cmpm: CMPMSpec | None = None
    cmpc: CMPCSpec | None = None
    sdm: SDMSpec | None = None
    id: IdentitySpec | None = None
    mlm: MLMSpec | None = None
    bce: WeightedBCESpec | None = None

    @model_validator(mode="after")
    def _some(self) -> LossesSpec:
        if not self.active():
            raise ValueError("a recipe needs at least one loss")
        return self

    def active(self) -> list[str]:
        """Names of the losses that are on (a loss with ``enabled: false`` is off)."""
        return [
            name
            for name in type(self).model_fields
            if (part := getattr(self, name)) is not None and getattr(part, "enabled", True)
        ]


class NeckSpec(RecipePart):
    kind: Literal["bnneck", "none"]
    frozen_bias: bool = Field(False, description="BNNeck: the BatchNorm bias is not trained")
    classifier_bias: bool = False
    classifier_init_std: PositiveFloat | None = Field(None, description="N(0, std) init of the classifier")
    logits_bn: bool = Field(False, description="a BatchNorm on the classifier's logits (attributes)")

    @model_validator(mode="after")
    def _bn(self) -> NeckSpec:
        if self.frozen_bias and self.kind != "bnneck":
            raise ValueError("frozen_bias needs kind: bnneck")
        return self


class RerankSpec(RecipePart):
    enabled: bool = False
    k1: PositiveInt
    k2: PositiveInt
    lambda_value: Probability


class TestSpec(RecipePart):
    __test__ = False  # not a pytest class

    feature: Literal["before-bn", "after-bn", "embedding"] = Field(
        description="image ReID: the feature before or after the BNNeck; embedding: the backbone's output"
    )
    normalize: bool = True
    flip: bool = False
    rerank: RerankSpec | None = None
    threshold: Probability | None = Field(None, description="attributes: positive when sigmoid > threshold")


class PositionEmbeddingSpec(RecipePart):
    resample: bool = Field(description="resample the pre-trained grid to the input size / patch stride")
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"


class EmaSpec(RecipePart):
    decay: float = Field(gt=0.0, lt=1.0)
    evaluate_ema: bool = Field(True, description="validation and test use the EMA weights")


class GradClipSpec(RecipePart):
    max_norm: PositiveFloat


class SelectionSpec(RecipePart):
    split: Literal["val", "test"] = Field(
        "val",
        description="where the checkpoint is chosen and the plateau scheduler looks: 'val' (plipbench), "
        "'test' only as an explicit, paper-compatible opt-in",
    )
    checkpoint: Literal["last", "best"] = "last"
    metric: str | None = Field(None, description="the score that picks the best checkpoint")
    reference: str = Field(description="what the reference code does, for the record")

    @model_validator(mode="after")
    def _metric(self) -> SelectionSpec:
        if self.checkpoint == "best" and not self.metric:
            raise ValueError("checkpoint: best needs a metric")
        return self


class VariantMatch(RecipePart):
    """When a variant applies: every given condition must hold."""

    architecture: tuple[Architecture, ...] = ()
    training_data_any: tuple[str, ...] = Field((), description="the backbone was trained on one of these")
    max_parameters: PositiveInt | None = None


class Variant(RecipePart):
    """Backbone-kind values: ``set`` (dotted keys, as overrides) applies when ``when`` matches."""

    name: str
    description: str = ""
    when: VariantMatch
    set: dict[str, Any] = Field(min_length=1)


class Recipe(RecipePart):
    """One reference fine-tune recipe, as shipped or as resolved for a backbone."""

    name: str
    description: str
    task: TaskKind
    fits: tuple[Architecture, ...] = Field(min_length=1, description="the backbone kinds the recipe is for")
    modalities: tuple[Modality, ...] = Field(("image",), description="what the backbone must encode")
    reference: Reference
    input: InputSpec
    augment: AugmentSpec
    sampler: SamplerSpec
    optimizer: OptimizerSpec
    warmup: WarmupSpec | None = None
    schedule: Schedule
    epochs: PositiveInt
    stop_after: PositiveInt | None = Field(
        None, description="a short run: train only the first N epochs, the lr following the schedule over "
        "`epochs` (truncated, not compressed); null: all `epochs`"
    )
    losses: LossesSpec
    neck: NeckSpec
    last_stride: Literal[1, 2] | None = Field(None, description="stride of the last CNN stage; null: not set")
    position_embedding: PositionEmbeddingSpec | None = None
    drop_path: float | None = Field(None, ge=0.0, lt=1.0)
    backbone_args: dict[str, Any] = Field(
        default_factory=dict, description="factory keywords the reference sets (SOLIDER's semantic_weight)"
    )
    ema: EmaSpec | None = None
    grad_clip: GradClipSpec | None = None
    precision: Literal["fp32", "amp", "fp16-weights"] = Field(
        "fp32", description="fp16-weights: the weights themselves in fp16, no fp32 master copy (CLIP style)"
    )
    test: TestSpec
    selection: SelectionSpec
    variants: tuple[Variant, ...] = ()
    datasets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-dataset values (dotted keys), applied after the variants"
    )

    @property
    def train_epochs(self) -> int:
        """The epochs this run trains: ``stop_after`` where set, else ``epochs``."""
        return self.stop_after if self.stop_after is not None else self.epochs

    @model_validator(mode="after")
    def _coherent(self) -> Recipe:
        if self.warmup is not None:
            if self.schedule.kind == "plateau":
                raise ValueError("a plateau schedule has no warm-up in the references; drop warmup")
            if self.warmup.epochs >= self.epochs:
                raise ValueError(f"warmup.epochs ({self.warmup.epochs}) must be below epochs ({self.epochs})")
        if self.schedule.kind == "multistep" and self.schedule.milestones[-1] > self.epochs:
            raise ValueError(
                f"milestone {self.schedule.milestones[-1]} is past the last epoch ({self.epochs})"
            )
        if self.stop_after is not None and self.stop_after > self.epochs:
            raise ValueError(f"stop_after ({self.stop_after}) is past the last epoch ({self.epochs})")
        if self.task == "text-reid" and "text" not in self.modalities:
            raise ValueError("a text-reid recipe needs modalities [image, text]")
        if self.neck.kind != "bnneck" and self.test.feature in ("before-bn", "after-bn"):
            raise ValueError(f"test.feature {self.test.feature} needs neck.kind bnneck")
        return self
