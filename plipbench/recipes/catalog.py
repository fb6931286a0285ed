"""Where recipes are found, how they are read, and dotted-key edits with one-line errors.

Recipes are the YAML files of ``plipbench/recipes/data/`` (shipped in the wheel as package data),
plus those in the folders of ``$PLIPBENCH_RECIPES`` (``os.pathsep`` separated), which come first:
the first ``<name>.yaml`` wins. :func:`load_recipe` also takes a path to a YAML file.

Every error is a :class:`~plipbench.errors.ConfigError` of one line that names the file (or the
override) and the bad key; an unknown key lists the keys known at that place.
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from plipbench.errors import ConfigError, one_line, yaml_error_line
from plipbench.recipes.schema import Recipe

SHIPPED_DIR = Path(__file__).resolve().parent / "data"
#: top-level keys that an override or a variant may not set
FIXED_KEYS = ("name", "variants", "datasets")


def recipe_dirs() -> list[Path]:
    """The folders searched for ``<name>.yaml``, in order: ``$PLIPBENCH_RECIPES``, then the shipped ones."""
    dirs = [Path(p).expanduser() for p in os.environ.get("PLIPBENCH_RECIPES", "").split(os.pathsep) if p]
    return [d for d in [*dirs, SHIPPED_DIR] if d.is_dir()]


def recipe_names() -> list[str]:
    return sorted({p.stem for d in recipe_dirs() for p in d.glob("*.yaml")})


def recipe_path(name: str) -> Path:
    """The file of recipe ``name``, or of the YAML path ``name``; an unknown name lists the known ones."""
    if name.endswith((".yaml", ".yml")):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"recipe file not found: {path}")
        return path
    for d in recipe_dirs():
        if (d / f"{name}.yaml").is_file():
            return d / f"{name}.yaml"
    raise ConfigError(f"unknown recipe {name!r}; known: {', '.join(recipe_names()) or 'none'}")


def load_recipe(name: str) -> Recipe:
    """Read and validate a recipe by name or path (``yaml.safe_load``), its variants and datasets too."""
    import yaml

    path = recipe_path(name)
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {yaml_error_line(err)}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    recipe = validate_recipe(tree, str(path))
    base = recipe.model_dump(mode="python", exclude={"variants", "datasets"})
    # a variant or dataset block with a typo must fail when the file is read, not on the one backbone it matches
    for variant in recipe.variants:
        validate_recipe(apply_dotted(base, variant.set, f"{path}: variant {variant.name!r}"),
                        f"{path}: variant {variant.name!r}")  # fmt: skip
    for dataset, values in recipe.datasets.items():
        validate_recipe(
            apply_dotted(base, values, f"{path}: dataset {dataset!r}"), f"{path}: dataset {dataset!r}"
        )
    return recipe


def validate_recipe(tree: dict[str, Any], source: str) -> Recipe:
    try:
        return Recipe.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe_errors(err)}") from None


def describe_errors(err: ValidationError) -> str:
    """A pydantic error of a recipe as one line; an unknown key names the keys known where it sits."""
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            known = fields_at(Recipe, loc[:-1]) or []
            problems.append(f"unknown key {where!r} (known: {', '.join(known)})")
        else:
            got = f" (got {one_line(repr(e.get('input')), 80)})" if loc else ""
            problems.append(f"{where}: {one_line(e['msg']).removeprefix('Value error, ')}{got}")
    return "; ".join(problems)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _step(models: list[type[BaseModel]], key: Any) -> list[type[BaseModel]] | None:
    """The models under field ``key`` of ``models``; a discriminated union's tag selects its member."""
    tagged = [
        m
        for m in models
        if "kind" in m.model_fields and key in typing.get_args(m.model_fields["kind"].annotation)
    ]
    if tagged:
        return tagged
    found = [m.model_fields[key] for m in models if isinstance(key, str) and key in m.model_fields]
    if not found:
        return None
    return [m for field in found for m in _models_in(field.annotation)]


def fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys a recipe may have at ``loc`` (``("optimizer",)`` -> the optimizer's fields); None inside a
    free-form mapping (``backbone_args``), where any key goes."""
    models: list[type[BaseModel]] = [model]
    for key in loc:
        if isinstance(key, int):  # a list item: same models
            continue
        field = models[0].model_fields.get(key) if len(models) == 1 and isinstance(key, str) else None
        if field is not None and typing.get_origin(field.annotation) is dict:
            return None
        nxt = _step(models, key)
        if not nxt:
            return []
        models = nxt
    return sorted({name for m in models for name in m.model_fields})


def apply_dotted(tree: dict[str, Any], values: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of ``tree`` with each dotted key of ``values`` set (``optimizer.lr: 4e-4``). A key that the
    recipe schema does not have is a one-line error naming ``source`` and the known keys."""
    import copy

    out = copy.deepcopy(tree)
    for dotted, value in values.items():
        parts = str(dotted).split(".")
        if not all(parts):
            raise ConfigError(f"{source}: malformed key {dotted!r}")
        node = out
        for depth, part in enumerate(parts):
            known = fields_at(Recipe, tuple(_tags(out, parts[:depth])))
            if depth == 0:
                known = [k for k in known or () if k not in FIXED_KEYS]
            if known is not None and part not in known:
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"{source}: unknown recipe key {where!r} (known: {', '.join(known)})")
            if depth == len(parts) - 1:
                node[part] = copy.deepcopy(value)
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}  # switching on a part that is off (ema: null -> ema.decay=...)
                node = node[part]
    return out


def _tags(tree: dict[str, Any], parts: list[str]) -> list[str]:
    """The path ``parts`` with a discriminated union's tag added where the tree has one (``schedule`` ->
    ``schedule.cosine``), so that :func:`fields_at` lists that member's keys only."""
    out: list[str] = []
    node: Any = tree
    for part in parts:
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and "kind" in node:
            out.append(node["kind"])
    return out
