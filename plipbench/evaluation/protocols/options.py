"""Protocol options as typed models: every default written once, beside its bounds.

Each protocol that takes options has one :class:`ProtocolOptions` subclass here (pydantic, ``extra="forbid"``,
strict types: ``10`` is no ``lr`` string, ``true`` no integer). The protocol registry
(:mod:`plipbench.evaluation.protocols.registry`) names the model of each protocol; the protocol validates
``ctx.options`` with it (``resolve_options(ctx, Model)``) and records ``model_dump()`` in the result: floats stay
floats (``lr: 1`` is recorded ``1.0``), lists stay lists.

A failed check is the project's one-line :class:`~plipbench.errors.ConfigError` naming the task, the protocol,
the option, what it expects and what it got. What a field expects is derived from its type and bounds, or
given as ``json_schema_extra={"expects": "..."}`` where the type says too little.

The README's "Protocol defaults" table is generated from these models and the registry::

    python -m plipbench.evaluation.protocols.options --markdown
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from plipbench.errors import ConfigError


class ProtocolOptions(BaseModel):
    """Base of every protocol's options: unknown keys refused, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def resolved(self) -> dict[str, Any]:
        """The options as recorded in a result (field order, JSON-ready Python values)."""
        return self.model_dump(mode="python")

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return cls().resolved()


# -- error messages -------------------------------------------------------------------------------
def _bound(metadata: list[Any]) -> str:
    parts = []
    for m in metadata:
        if isinstance(m, Ge):
            parts.append(f">= {m.ge}")
        elif isinstance(m, Gt):
            parts.append(f"> {m.gt}")
        elif isinstance(m, Le):
            parts.append(f"<= {m.le}")
        elif isinstance(m, Lt):
            parts.append(f"< {m.lt}")
    return " and ".join(parts)


def _describe(annotation: Any, metadata: list[Any]) -> str:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        text = " or ".join(_describe(a, metadata) for a in args)
        return text + (" or null" if len(args) < len(typing.get_args(annotation)) else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(annotation))
    if annotation is bool:
        return "true or false"
    bound = _bound(metadata)
    if annotation is int:
        return "an integer" + (f" {bound}" if bound else "")
    if annotation is float:
        return "a number" + (f" {bound}" if bound else "")
    if annotation is str:
        return "a string"
    return str(annotation)


def expects(model: type[ProtocolOptions], key: str) -> str:
    """What option ``key`` of ``model`` accepts, in words (``"an integer >= 1"``, ``"one of 'a', 'b'"``)."""
    field = model.model_fields[key]
    extra = field.json_schema_extra
    if isinstance(extra, Mapping) and "expects" in extra:
        return str(extra["expects"])
    return _describe(field.annotation, list(field.metadata))


def validate_options(model: type[ProtocolOptions], given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``given`` checked against ``model`` and completed with its defaults, as recorded in a result.

    ``where`` names the task and protocol (``"task t, protocol p (kind base)"``); every error is one line:
    ``<where>: unknown option 'k'; known options: a, b`` or ``<where>: option 'k' expects ..., got ...``.
    """
    unknown = sorted(set(given) - set(model.model_fields))
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}; known options: {', '.join(model.model_fields)}")
    try:
        return model.model_validate(dict(given)).resolved()
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        got = given.get(key) if key in given else first.get("input")
        expected = expects(model, key) if key in model.model_fields else first["msg"]
        raise ConfigError(f"{where}: option {key!r} expects {expected}, got {got!r}") from None


# -- text ReID ------------------------------------------------------------------------------------
def _t2i_once(value: list[str]) -> list[str]:
    if "t2i" not in value or len(set(value)) != len(value):
        raise ValueError("directions must hold 't2i' once, and optionally 'i2t'")
    return value


Directions = Annotated[list[Literal["t2i", "i2t"]], AfterValidator(_t2i_once)]
_DIRECTIONS = {"expects": "a list holding 't2i' and optionally 'i2t'"}


class TextZeroShotOptions(ProtocolOptions):
    """Text ReID zero-shot: cosine retrieval with the frozen encoders."""

    directions: Directions = Field(["t2i"], json_schema_extra=_DIRECTIONS,
                                   description="t2i, and i2t for image-to-text scores too")


class TextLinearProbeOptions(ProtocolOptions):
    """Text ReID linear probe: one linear layer per modality, CMPM on P x K batches, Adam; best val R@1."""

    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-3, gt=0, description="Adam")
    weight_decay: float = Field(0.0, ge=0)
    identities_per_batch: int = Field(16, ge=1)
    images_per_identity: int = Field(4, ge=1)
    init: Literal["identity", "random"] = "identity"
    input_scale: float = Field(10.0, gt=0, description="L2-normalised features times this")
    directions: Directions = Field(["t2i"], json_schema_extra=_DIRECTIONS)



class TextFineTuneOptions(ProtocolOptions):
    """Text ReID short fine-tune (synthetic twins without ``recipe``): both encoders, CMPM (+ CMPC), AdamW, P x K
    batches, one caption drawn per image and epoch, best val R@1. The real-data run is a recipe's
    (:class:`TextRecipeRunOptions`)."""

    epochs: int = Field(1, ge=1)
    lr: float = Field(1e-4, gt=0, description="AdamW, encoders")
    classifier_lr_factor: float = Field(10.0, gt=0, description="CMPC classifier lr = lr x this")
    weight_decay: float = Field(0.02, ge=0)
    identities_per_batch: int = Field(16, ge=1)
    images_per_identity: int = Field(2, ge=1)
    loss: Literal["cmpm+cmpc", "cmpm"] = "cmpm+cmpc"
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps")
    max_steps: int | None = Field(None, ge=1, description="caps the total steps")
    flip_probability: float = Field(0.5, ge=0, le=1)
    num_workers: int = Field(0, ge=0)
    sync_bn: bool = Field(False, description="SyncBatchNorm under torchrun on CUDA")
    directions: Directions = Field(["t2i"], json_schema_extra=_DIRECTIONS)


# -- fine-tunes run from a recipe -----------------------------------------------------------------
class RecipeRunOptions(ProtocolOptions):
    """The options a fine-tune run from a recipe keeps for itself (``recipe_run.RUN_OPTIONS``); every other
    option of such a run is a recipe override (a dotted key or a shorthand: ``epochs``, ``lr``, ...), checked by
    the recipe resolver when the run starts, against the backbone (:meth:`split`)."""

    recipe: str | None = Field(None, description="a shipped recipe name, 'reference' or a YAML path; null: "
                                                 "the reference recipe on real data")
    input_size: Literal["recipe", "native"] = Field("recipe", description="the recipe's size or the backbone's")
    max_steps: int | None = Field(None, ge=1)
    num_workers: int = Field(0, ge=0)
    sync_bn: bool = False
    autocast: Literal["fp32", "bf16", "fp16", "auto", "recipe"] = Field(
        "recipe", description="the recipe's precision on CUDA (AMP where the reference uses it), fp32 on CPU")
    channels_last: Literal["auto"] | bool = Field("auto", description="auto: CNNs on CUDA")
    compile: bool = Field(False, description="torch.compile the training step")

    @classmethod
    def split(cls, given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(own options, recipe overrides)`` of ``given``."""
        own = {k: v for k, v in given.items() if k in cls.model_fields}
        return own, {k: v for k, v in given.items() if k not in cls.model_fields}

    @classmethod
    def validate_run(cls, given: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The own options checked and completed with their defaults, then the overrides as given."""
        own, overrides = cls.split(given)
        return {**validate_options(cls, own, where), **overrides}


class TextRecipeRunOptions(RecipeRunOptions):
    """Text ReID fine-tune from a recipe: the run's own options, plus the retrieval ``directions``."""

    directions: Directions = Field(["t2i"], json_schema_extra=_DIRECTIONS)


def runs_from_recipe(given: Mapping[str, Any], short: type[ProtocolOptions]) -> bool:
    """Whether a fine-tune's ``given`` options are a recipe run's as far as they alone tell: ``recipe`` set, or a
    key the short fine-tune does not have (a recipe override). A real-data task runs its reference recipe even
    without either; its options are then checked again by the run (it knows whether the data is real)."""
    return given.get("recipe") is not None or bool(set(given) - set(short.model_fields))


# -- image ReID -----------------------------------------------------------------------------------
_RERANK_KEYS = ("k1", "k2", "lambda_value")


def _rerank_keys(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and set(value) - set(_RERANK_KEYS):
        raise ValueError("unknown re-ranking key")
    return value


#: ``rerank``: null or k-reciprocal re-ranking parameters ``{k1, k2, lambda_value}`` (Zhong et al. 2017)
Rerank = Annotated[dict[str, Any] | None, AfterValidator(_rerank_keys)]
_RERANK = {"expects": "null or a mapping with keys k1, k2, lambda_value"}


class ImageZeroShotOptions(ProtocolOptions):
    """Image ReID zero-shot: the frozen image encoder, optional flip averaging and k-reciprocal re-ranking."""

    flip: bool = Field(False, description="average the features of the image and its mirror")
    rerank: Rerank = Field(None, json_schema_extra=_RERANK, description="k-reciprocal re-ranking parameters")


class ImageFineTuneOptions(ProtocolOptions):
    """Image ReID short fine-tune (synthetic twins without ``recipe``), BoT-style: encoder + BNNeck + classifier,
    CE with label smoothing + batch-hard triplet, AdamW, P x K batches, last epoch kept; tested as the zero-shot
    (``flip``, ``rerank``). The real-data run is a recipe's (:class:`ImageRecipeRunOptions`)."""

    epochs: int = Field(1, ge=1)
    lr: float = Field(3.5e-4, gt=0, description="AdamW (BoT: Adam 3.5e-4)")
    weight_decay: float = Field(5e-4, ge=0)
    identities_per_batch: int = Field(8, ge=1)
    images_per_identity: int = Field(4, ge=1)
    margin: float = Field(0.3, ge=0, description="batch-hard triplet margin, euclidean")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps")
    max_steps: int | None = Field(None, ge=1, description="caps the total steps")
    flip_probability: float = Field(0.5, ge=0, le=1)
    num_workers: int = Field(0, ge=0)
    sync_bn: bool = Field(False, description="SyncBatchNorm under torchrun on CUDA")
    flip: bool = Field(False, description="test: average the features of the image and its mirror")
    rerank: Rerank = Field(None, json_schema_extra=_RERANK, description="test: k-reciprocal re-ranking")


class ImageRecipeRunOptions(RecipeRunOptions):
    """Image ReID fine-tune from a recipe: the run's own options, plus the test's ``flip`` and ``rerank``; null
    takes the recipe's ``test.flip`` / ``test.rerank``."""

    flip: bool | None = Field(None, description="null: the recipe's test.flip")
    rerank: Rerank = Field(None, json_schema_extra=_RERANK, description="null: the recipe's test.rerank")


# -- attributes -----------------------------------------------------------------------------------
class AttributeLinearProbeOptions(ProtocolOptions):
    """Attribute linear probe: weighted BCE (Rethinking_of_PAR) or logistic regression with C picked on val."""

    method: Literal["logistic-regression", "weighted-bce"] = "weighted-bce"
    solver: Literal["lbfgs", "sklearn"] = Field("lbfgs", description="logistic-regression only")
    C: float = Field(1.0, gt=0, description="logistic-regression without a val split")
    C_grid: list[Annotated[float, Gt(0)]] = Field([0.01, 0.1, 1.0, 10.0], min_length=1,
                                json_schema_extra={"expects": "a non-empty list of positive numbers"})
    max_iter: int = Field(100, ge=1)
    refit_on_train_val: bool = True
    epochs: int = Field(20, ge=1, description="weighted-bce")
    lr: float = Field(1e-2, gt=0, description="weighted-bce, Adam")
    batch_size: int = Field(64, ge=1)
    weight_decay: float = Field(1e-4, ge=0)


class AttributeZeroShotOptions(ProtocolOptions):
    """Attribute zero-shot: ``p = sigmoid(scale * (cos(img, pos) - cos(img, neg)))``."""

    scale: float = Field(100.0, gt=0)
    prompts: dict[str, list[str]] | None = Field(
        None, json_schema_extra={"expects": "null or a mapping attribute name -> [positive, negative] sentences"},
        description="overrides of some attributes' sentence pairs")

    @field_validator("prompts", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, dict):  # a (positive, negative) tuple from Python is a pair too
            value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            if any(not isinstance(v, list) or len(v) != 2 for v in value.values()):
                raise ValueError("each prompt is a [positive, negative] pair")
        return value


class AttributeFineTuneOptions(ProtocolOptions):
    """Attribute short fine-tune (synthetic twins without ``recipe``), Rethinking_of_PAR-style: encoder + linear
    classifier (+ BN on the logits), weighted BCE, shuffled batches, best val mA. The real-data run is a recipe's
    (:class:`RecipeRunOptions`: an attribute recipe run has no options of its own beyond those)."""

    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-4, gt=0, description="encoder (Rethinking_of_PAR's LR_FT)")
    classifier_lr_factor: float = Field(10.0, gt=0, description="classifier lr = lr x this")
    weight_decay: float = Field(5e-4, ge=0, description="L2 for adam / sgd, decoupled for adamw")
    optimizer: Literal["adam", "adamw", "sgd"] = Field("adam", description="sgd: momentum 0.9")
    batch_size: int = Field(64, ge=2)
    logits_bn: bool = Field(True, description="BatchNorm1d on the logits")
    clip_grad_norm: float | None = Field(10.0, gt=0, description="null: no clipping")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps")
    max_steps: int | None = Field(None, ge=1, description="caps the total steps")
    flip_probability: float = Field(0.5, ge=0, le=1)
    num_workers: int = Field(0, ge=0)
    sync_bn: bool = Field(False, description="SyncBatchNorm under torchrun on CUDA")


# -- parsing --------------------------------------------------------------------------------------
class ParsingLinearProbeOptions(ProtocolOptions):
    """Parsing linear probe: DINOv2's linear BNHead on the frozen dense maps, cross-entropy, AdamW, linear decay."""

    input_size: list[Annotated[int, Ge(16)]] = Field([256, 128], min_length=2, max_length=2,
                                  json_schema_extra={"expects": "[H, W], two integers >= 16"})
    layers: list[int] = Field(
        [-1], min_length=1,
        json_schema_extra={"expects": "a non-empty list of stage indices (e.g. [-1] or [-2, -1])"})
    epochs: int = Field(30, ge=1)
    lr: float = Field(1e-3, gt=0, description="AdamW")
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(32, ge=1)
    loss_stride: int = Field(1, ge=1, description="training loss at input_size / loss_stride")

    @field_validator("input_size", "layers", mode="before")
    @classmethod
    def _tuple_is_list(cls, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value



class ParsingFineTuneOptions(ProtocolOptions):
    """Parsing fine-tune: the probe's BN + 1x1 conv head with the backbone trained; AdamW, linear warm-up times a
    polynomial decay (SCHP's / DeepLab's power), horizontal flip with the left/right classes swapped."""

    input_size: list[Annotated[int, Ge(16)]] = Field([256, 128], min_length=2, max_length=2,
                                  json_schema_extra={"expects": "[H, W], two integers >= 16"})
    layers: list[int] = Field(
        [-1], min_length=1,
        json_schema_extra={"expects": "a non-empty list of stage indices (e.g. [-1] or [-2, -1])"})
    epochs: int = Field(5, ge=1)
    max_steps: int | None = Field(None, ge=1, description="caps the total steps")
    lr: float = Field(1e-4, gt=0, description="AdamW, backbone")
    head_lr_factor: float = Field(10.0, gt=0, description="head lr = lr x this")
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(8, ge=2)
    warmup_steps: int = Field(0, ge=0)
    poly_power: float = Field(0.9, ge=0, description="polynomial decay to 0 over the run's steps")
    clip_grad_norm: float | None = Field(None, gt=0, description="null: no clipping")
    flip_probability: float = Field(0.5, ge=0, le=1)
    num_workers: int = Field(0, ge=0)
    sync_bn: bool = False

    @field_validator("input_size", "layers", mode="before")
    @classmethod
    def _tuple_is_list(cls, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value


# -- person search --------------------------------------------------------------------------------
class GtBoxesOptions(ProtocolOptions):
    """Person search with ground-truth boxes: no protocol options (its knobs are metric and reader options)."""


# -- the README table -----------------------------------------------------------------------------
def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


def defaults_markdown() -> str:
    """The "Protocol defaults" table of the README: one row per registered protocol, its options' defaults."""
    from plipbench.evaluation.protocols.registry import PROTOCOLS

    lines = ["| task kind | protocol | trains | defaults |", "|---|---|---|---|"]
    for entry in PROTOCOLS.values():
        defaults = entry.defaults()
        cells = ", ".join(f"`{k} {_value(v)}`" for k, v in defaults.items()) if defaults else "no options"
        if entry.recipe_options is not None:
            own = entry.recipe_options.defaults()
            cells += ("; from a recipe: " + ", ".join(f"`{k} {_value(v)}`" for k, v in own.items())
                      + ", every other key a recipe override")
        lines.append(f"| {entry.kind} | {entry.base} | {'yes' if entry.trains else 'no'} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - exercised through the README test
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m plipbench.evaluation.protocols.options --markdown")
    sys.stdout.write(defaults_markdown())
