"""The one protocol registry: which protocols exist, for which task kind, with which options.

Every (task kind, base protocol) has one :class:`ProtocolEntry`: the function (a lazy ``"module:attr"``, so
listing protocols imports no torch), the options model (:mod:`~plipbench.evaluation.protocols.options`),
whether it trains (a protocol that trains runs once per seed; one that does not is one deterministic run) and
whether it needs a text encoder. Task specs check their bases against it, the runner looks protocols up in it,
and the README's defaults table is generated from it.

Adding a protocol: write ``def my_protocol(ctx: ProtocolContext) -> ProtocolOutput`` that starts with
``options = resolve_options(ctx, MyOptions)``, add ``class MyOptions(ProtocolOptions)`` to ``options.py`` and one
``_register(...)`` line below. Every protocol's options are typed (the fine-tunes' were the last: their models
kept the old defaults dicts' keys, order and Python types, pinned by ``BEFORE`` in
``tests/evaluation/test_protocol_options.py``, so that the committed results stay valid); the README's
defaults table is regenerated from the models.

A fine-tune that also runs from a recipe (``recipe_run``) has two option sets: the short fine-tune's model
(``options``, ``extra="forbid"``) and the recipe run's own options (``recipe_options``, a
:class:`~plipbench.evaluation.protocols.options.RecipeRunOptions` subclass); on the recipe path every other key
is a recipe override, passed through here and checked by the recipe resolver when the run starts (it needs the
backbone). :meth:`ProtocolEntry.validate` picks the set with
:func:`~plipbench.evaluation.protocols.options.runs_from_recipe`; the protocol itself checks again with the set
of the path it takes (``resolve_options(ctx, Model)`` on the short path,
``<Kind>RecipeRunOptions.validate_run(ctx.options, where)`` before ``resolve_protocol_recipe``). Such a
fine-tune registers its ``RecipeRunOptions`` subclass (the run's extra own options, e.g. image ReID's ``flip``;
:class:`~plipbench.evaluation.protocols.options.RecipeRunOptions` itself where it has none, as the attribute
fine-tune) as ``recipe_options=`` on its line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import options as opt
from plipbench.evaluation.protocols.person_search_detector import DetectorFineTuneOptions

if TYPE_CHECKING:  # pragma: no cover
    from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput


@dataclass(frozen=True)
class ProtocolEntry:
    kind: str
    base: str
    target: str  # "module:attr" of the protocol function
    options: type[opt.ProtocolOptions]
    trains: bool
    needs_text: bool = False
    recipe_options: type[opt.RecipeRunOptions] | None = None  # a fine-tune's own options when run from a recipe

    def load(self) -> Callable[[ProtocolContext], ProtocolOutput]:
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)

    def defaults(self) -> dict[str, Any]:
        return self.options.defaults()

    def validate(self, given: Mapping[str, Any], where: str) -> dict[str, Any]:
        """``given`` checked and completed with the defaults, as the result records them.

        A fine-tune with ``recipe_options`` whose ``given`` tell a recipe run (:func:`opt.runs_from_recipe`): its own
        options checked and completed, the recipe overrides after them as given.
        """
        if self.recipe_options is not None and opt.runs_from_recipe(given, self.options):
            return self.recipe_options.validate_run(given, where)
        return opt.validate_options(self.options, given, where)


PROTOCOLS: dict[tuple[str, str], ProtocolEntry] = {}


def _register(kind: str, base: str, target: str, options: type[opt.ProtocolOptions], *, trains: bool,
              needs_text: bool = False, recipe_options: type[opt.RecipeRunOptions] | None = None) -> None:
    PROTOCOLS[(kind, base)] = ProtocolEntry(kind, base, "plipbench.evaluation.protocols." + target, options, trains,
                                            needs_text, recipe_options)


_register("text-reid", "zero-shot", "text_reid:zero_shot", opt.TextZeroShotOptions, trains=False, needs_text=True)
_register("text-reid", "linear-probe", "text_reid:linear_probe", opt.TextLinearProbeOptions, trains=True,
          needs_text=True)
_register("text-reid", "fine-tune", "text_reid:fine_tune", opt.TextFineTuneOptions, trains=True, needs_text=True,
          recipe_options=opt.TextRecipeRunOptions)
_register("image-reid", "zero-shot", "image_reid:zero_shot", opt.ImageZeroShotOptions, trains=False)
_register("image-reid", "fine-tune", "image_reid:fine_tune", opt.ImageFineTuneOptions, trains=True,
          recipe_options=opt.ImageRecipeRunOptions)
_register("attributes", "linear-probe", "attributes:linear_probe", opt.AttributeLinearProbeOptions, trains=True)
_register("attributes", "zero-shot", "attributes:zero_shot", opt.AttributeZeroShotOptions, trains=False,
          needs_text=True)
_register("attributes", "fine-tune", "attributes:fine_tune", opt.AttributeFineTuneOptions, trains=True,
          recipe_options=opt.RecipeRunOptions)
_register("parsing", "linear-probe", "parsing:linear_probe", opt.ParsingLinearProbeOptions, trains=True)
_register("parsing", "fine-tune", "parsing_fine_tune:fine_tune", opt.ParsingFineTuneOptions, trains=True)
_register("person-search", "gt-boxes", "person_search:gt_boxes", opt.GtBoxesOptions, trains=False)
_register("person-search", "detector-fine-tune", "person_search_detector:detector_fine_tune", DetectorFineTuneOptions,
          trains=True)


def protocol_entry(kind: str, base: str) -> ProtocolEntry:
    entry = PROTOCOLS.get((kind, base))
    if entry is None:
        raise ConfigError(f"no protocol {base!r} for task kind {kind!r}; known: {', '.join(bases(kind)) or 'none'}")
    return entry


def bases(kind: str) -> tuple[str, ...]:
    """The base protocols of a task kind, in registration order."""
    return tuple(b for k, b in PROTOCOLS if k == kind)


def deterministic_bases() -> tuple[str, ...]:
    """Base protocols that train nothing (one run on all the data, no seed), whatever the kind."""
    return tuple(sorted({e.base for e in PROTOCOLS.values() if not e.trains}))


def get_protocol(kind: str, base: str) -> Callable[[ProtocolContext], ProtocolOutput]:
    return protocol_entry(kind, base).load()
