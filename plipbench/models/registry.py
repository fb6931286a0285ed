"""A generic lazy registry, the backbone-family registry, and ``create_backbone``.

``Registry[T]`` maps names to objects or to ``"module:attr"`` placeholders that are imported on
first use, plus entry points of an ``importlib.metadata`` group discovered (not imported) when
the registry is first listed. Listing families therefore imports nothing heavy.

Outside packages add a backbone family without editing plipbench by declaring an entry point::

    [project.entry-points."plipbench.backbones"]
    myfamily = "my_package.backbones:build"

after which ``create_backbone("myfamily:some-name")`` calls ``build("some-name", device=..., **overrides)``
(and ``create_backbone("myfamily")`` calls ``build(None, ...)``). See :func:`as_backbone` for what
a factory may return.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from plipbench.errors import ConfigError, PlipbenchError, validation_summary

T = TypeVar("T")
ENTRY_POINT_GROUP = "plipbench.backbones"


def import_object(reference: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted)."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"expected 'module:attribute', got {reference!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise PlipbenchError(f"cannot import module {module_name!r} (from {reference!r}): {err}") from err
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PlipbenchError(
                f"module {module_name!r} has no attribute {attr!r} (from {reference!r})"
            ) from None
    return obj


class Registry(Generic[T]):
    """Name -> object, with lazy ``"module:attr"`` placeholders and entry-point discovery."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, Any] = {}
        self._origins: dict[str, str] = {}
        self._entry_points_loaded = False
        self._from_entry_points: set[str] = set()

    def register(self, name: str, target: T | str | None = None, *, overwrite: bool = False) -> Any:
        """Register ``target`` (an object or a ``"module:attr"`` string); without target, act as a decorator."""
        if target is None:
            return lambda obj: self.register(name, obj, overwrite=overwrite) or obj
        if name in self._items and not overwrite:
            raise ConfigError(f"{self.kind} {name!r} is already registered ({self._origins[name]})")
        self._items[name] = target
        self._origins[name] = target if isinstance(target, str) else f"{getattr(target, '__module__', '?')}"
        return None

    def _discover(self) -> None:
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._items:  # built-ins win over plugins with the same name
                self._items[ep.name] = ep
                self._origins[ep.name] = f"entry point {ep.value} ({self.entry_point_group})"
                self._from_entry_points.add(ep.name)

    def refresh(self) -> None:
        """Forget discovered entry points (after installing a plugin in the same process)."""
        for name in self._from_entry_points:
            self._items.pop(name, None)
            self._origins.pop(name, None)
        self._from_entry_points.clear()
        self._entry_points_loaded = False

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._items)

    def origin(self, name: str) -> str:
        self._discover()
        return self._origins[name]

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

    def get(self, name: str) -> T:
        from importlib.metadata import EntryPoint

        self._discover()
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        item = self._items[name]
        if isinstance(item, str):
            item = import_object(item)
        elif isinstance(item, EntryPoint):
            try:
                item = item.load()
            except Exception as err:  # a broken plugin must not look like a plipbench bug
                raise PlipbenchError(
                    f"cannot load {self.kind} {name!r} from {self._origins[name]}: {err}"
                ) from err
        self._items[name] = item
        return item


BackboneFactory = Callable[..., Any]

FAMILIES: Registry[BackboneFactory] = Registry("backbone family", entry_point_group=ENTRY_POINT_GROUP)
FAMILIES.register("plip", "plipbench.models.adapters.plip_models:build_plip")
FAMILIES.register("random", "plipbench.models.adapters.random_init:build_random")
FAMILIES.register("hf-clip", "plipbench.models.adapters.hf_clip:build_hf_clip")
FAMILIES.register("open_clip", "plipbench.models.adapters.open_clip_models:build_open_clip")
FAMILIES.register("timm", "plipbench.models.adapters.timm_models:build_timm")
FAMILIES.register("torchreid", "plipbench.models.adapters.torchreid_models:build_torchreid")
FAMILIES.register("python", "plipbench.models.adapters.user:build_from_module")
FAMILIES.register("lup-resnet", "plipbench.models.zoo.resnet:build_lup_resnet")
FAMILIES.register("person-vit", "plipbench.models.zoo.vit:build_person_vit")
FAMILIES.register("solider", "plipbench.models.zoo.swin:build_solider")
FAMILIES.register("person-clip", "plipbench.models.zoo.clip:build_person_clip")


def list_families() -> list[str]:
    """Registered family names (built-ins and entry points), without importing any of them."""
    return FAMILIES.names()


def as_backbone(obj: Any, *, source: str, device: str = "cpu") -> Any:
    """Normalise what a factory returned into a :class:`~plipbench.models.backbone.Backbone`.

    Accepted return values:
    - a ``Backbone`` instance (moved to ``device``);
    - a tuple ``(module, metadata)`` or ``(module, metadata, image_transform)`` where ``module`` is
      an ``nn.Module``, ``metadata`` a ``BackboneMetadata`` or a dict of its fields, and
      ``image_transform`` an ``ImageTransform`` or dict. Without the third element, the module
      must have an ``image_transform`` attribute. The image embedding is ``module.encode_image(x)``
      when defined, else ``module(x)``; text models (``"text"`` in ``modalities``) must define
      ``module.encode_text(list[str])``.
    """
    from pydantic import ValidationError
    from torch import nn

    from plipbench.models.backbone import Backbone, ModuleBackbone
    from plipbench.models.metadata import BackboneMetadata, ImageTransform

    if isinstance(obj, Backbone):
        return obj.to(device)
    if isinstance(obj, tuple) and len(obj) in (2, 3) and isinstance(obj[0], nn.Module):
        module, meta = obj[0], obj[1]
        transform = obj[2] if len(obj) == 3 else getattr(module, "image_transform", None)
        if transform is None:
            raise ConfigError(
                f"{source}: the factory returned (module, metadata) but no image transform: return "
                "(module, metadata, image_transform) or set module.image_transform"
            )
        try:
            meta = meta if isinstance(meta, BackboneMetadata) else BackboneMetadata.model_validate(meta)
            if not isinstance(transform, ImageTransform):
                transform = ImageTransform.model_validate(transform)
        except ValidationError as err:
            raise ConfigError(
                f"{source}: invalid metadata or image transform returned by the factory: {validation_summary(err)}"
            ) from None
        return ModuleBackbone(module, meta, transform, device=device)
    raise ConfigError(
        f"{source}: the factory returned {type(obj).__name__}; expected a Backbone or a tuple "
        "(nn.Module, metadata[, image_transform])"
    )


def is_user_family(family: str) -> bool:
    """True for the families that run a user's code: ``python:`` and those added by entry points."""
    FAMILIES._discover()
    return family == "python" or family in FAMILIES._from_entry_points


def call_factory(source: str, build: Callable[[], Any], *, user_code: bool = True) -> Any:
    """``build()``, the construction of a backbone by ``source``'s factory. A user's factory is foreign
    code: an exception it raises becomes one :class:`PlipbenchError` naming the factory, and a
    ``sys.exit()`` in it (which would end ``eval`` or ``models check`` with status 0 and no output, a
    false pass in CI) is refused the same way, for every family. PlipbenchErrors pass through as they are."""
    try:
        return build()
    except PlipbenchError:
        raise
    except SystemExit as err:
        raise PlipbenchError(
            f"backbone factory {source} called sys.exit({err.code!r}) instead of returning a backbone"
        ) from None
    except Exception as err:
        if not user_code:
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise PlipbenchError(f"backbone factory {source} failed: {type(err).__name__}: {first}") from err


def _is_file_factory(spec: str) -> bool:
    path, sep, func = spec.rpartition(":")
    return bool(sep) and path.endswith(".py") and func.isidentifier()


def create_backbone(spec: str, *, device: str = "cpu", **overrides: Any) -> Any:
    """Build a backbone from a spec; returns a :class:`~plipbench.models.backbone.Backbone`.

    ``spec`` is one of:
    - a baseline name (``baselines/<name>.yaml``) or a path to a baseline YAML file;
    - ``family:target``: ``plip:/path/to/checkpoint``, ``random:plip-mini``, ``timm:resnet50.a1_in1k``,
      ``torchreid:osnet_x1_0``, ``hf-clip:openai/clip-vit-base-patch16``, ``open_clip:ViT-B-16:openai``,
      or a family added by an entry point (timm, open_clip and hf-clip fetch their weights into the
      Hugging Face cache as their libraries do; see :mod:`plipbench.models.hub`);
    - ``python:package.module:function`` or ``path/to/file.py:function``: a user's factory.

    ``overrides`` are passed to the family factory (e.g. ``weights=``, ``tokenizer=``,
    ``pretrained=False``, ``seed=``); ``precision="bf16"`` turns on bf16 autocast.
    """
    from plipbench.models import baselines

    precision = overrides.pop("precision", None)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"backbone spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    from plipbench.models.backbone import record_code_source

    if baselines.looks_like_baseline_file(spec) or baselines.find_baseline(spec) is not None:
        backbone = baselines.create_from_baseline(spec, device=device, **overrides)
    elif _is_file_factory(spec):
        from plipbench.models.adapters.user import build_from_file

        built = call_factory(spec, lambda: build_from_file(spec, device=device, **overrides))
        backbone = as_backbone(built, source=spec, device=device)
        record_code_source(backbone, spec.rpartition(":")[0])  # the user's factory file
    else:
        family, sep, target = spec.partition(":")
        if family not in FAMILIES:
            raise ConfigError(
                f"unknown backbone {spec!r}: not a baseline ({baselines.close_names_hint(spec)}), "
                f"not a family:name spec (families: {', '.join(list_families())}) and not a file.py:function"
            )
        factory = FAMILIES.get(family)
        built = call_factory(
            spec,
            lambda: factory(target if sep else None, device=device, **overrides),
            user_code=is_user_family(family),
        )
        backbone = as_backbone(built, source=spec, device=device)
        record_code_source(backbone, factory)  # the family's adapter module
        if family == "python" and target and ":" in target:  # the user's module
            record_code_source(backbone, importlib.import_module(target.partition(":")[0]))
    if precision is not None:
        backbone.set_precision(precision)
    return backbone
