"""Bad recipes and bad overrides fail with one line that names the file (or override) and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plipbench.errors import ConfigError
from plipbench.recipes import load_recipe, recipe_names, resolve_recipe
from plipbench.recipes.catalog import SHIPPED_DIR


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def write_bot(tmp_path: Path, edit) -> Path:
    tree = yaml.safe_load((SHIPPED_DIR / "bot.yaml").read_text())
    edit(tree)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def test_unknown_recipe_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_recipe("bag-of-tricks")
    assert one_line(err) == f"unknown recipe 'bag-of-tricks'; known: {', '.join(recipe_names())}"


def test_unknown_key_in_a_file_names_the_file_the_key_and_the_known_keys(tmp_path: Path) -> None:
    path = write_bot(tmp_path, lambda t: t["optimizer"].update(base_lr=1e-3))
    with pytest.raises(ConfigError) as err:
        load_recipe(str(path))
    text = one_line(err)
    assert text.startswith(f"{path}: unknown key 'optimizer.base_lr' (known: ")
    assert "lr, momentum" in text and "bias_lr_factor" in text


def test_unknown_key_inside_a_discriminated_schedule(tmp_path: Path) -> None:
    path = write_bot(tmp_path, lambda t: t["schedule"].update(min_factor=0.1))  # a cosine key on a multistep
    with pytest.raises(
        ConfigError, match=r"unknown key 'schedule\.multistep\.min_factor' \(known: epoch_offset, "
    ):
        load_recipe(str(path))


def test_bad_value_and_bad_yaml(tmp_path: Path) -> None:
    path = write_bot(tmp_path, lambda t: t["optimizer"].update(coupled_l2=False))
    with pytest.raises(ConfigError, match="adam has coupled weight decay") as err:
        load_recipe(str(path))
    one_line(err)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\n  bad: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML: line ") as err:
        load_recipe(str(broken))
    one_line(err)


def test_a_typo_in_a_variant_fails_when_the_file_is_read(tmp_path: Path) -> None:
    tree = yaml.safe_load((SHIPPED_DIR / "transreid.yaml").read_text())
    tree["variants"][0]["set"]["optimizer.rl"] = 1e-4
    path = tmp_path / "tr.yaml"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(
        ConfigError, match=r"variant 'person-pretrained-vit': unknown recipe key 'optimizer\.rl'"
    ):
        load_recipe(str(path))


def test_override_errors(resnet50, vit_b) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_recipe("bot", resnet50, {"optimizer.lrr": 1e-3})
    assert one_line(err).startswith("override: unknown recipe key 'optimizer.lrr' (known: betas, ")
    # a free-form mapping takes any key: the factory keywords of the backbone
    assert resolve_recipe("bot", resnet50, {"backbone_args.zero_init_last": False}).recipe.backbone_args == {
        "zero_init_last": False
    }
    with pytest.raises(ConfigError, match=r"unknown recipe key 'variants'"):
        resolve_recipe("bot", resnet50, {"variants": []})
    with pytest.raises(ConfigError, match="last_stride applies to CNN backbones, not to a vit") as err:
        resolve_recipe("transreid", vit_b, {"last_stride": 1})
    one_line(err)
    with pytest.raises(ConfigError, match="position_embedding applies to ViT backbones"):
        resolve_recipe("bot", resnet50, {"position_embedding.resample": True})


def test_selection_on_test_is_an_explicit_paper_compatible_opt_in(resnet50) -> None:
    assert not resolve_recipe("rethinking", resnet50).paper_compatible
    paper = resolve_recipe("rethinking", resnet50, {"selection": "test"})
    assert paper.paper_compatible and paper.recipe.selection.split == "test"
    assert paper.overrides == {"selection": "test"}


def test_recipes_from_plipbench_recipes_come_first(tmp_path: Path, monkeypatch) -> None:
    mine = write_bot(tmp_path, lambda t: t.update(name="bot", epochs=100))
    mine.rename(tmp_path / "bot.yaml")
    monkeypatch.setenv("PLIPBENCH_RECIPES", str(tmp_path))
    assert load_recipe("bot").epochs == 100


def test_every_shipped_file_loads_and_is_named_after_itself() -> None:
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        assert load_recipe(path.stem).name == path.stem


def test_package_data_ships_every_recipe_file() -> None:
    # the wheel itself is checked in tests/packaging/test_wheel.py (slow); this is the fast half
    import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = SHIPPED_DIR.parents[1]
    patterns = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    files = [p.relative_to(root).as_posix() for p in SHIPPED_DIR.glob("*.yaml")]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns["plipbench"]) for f in files)


def test_profiling_never_needs_weights(tmp_path: Path, monkeypatch) -> None:
    from plipbench.recipes import profile_backbone

    monkeypatch.setenv("PLIPBENCH_WEIGHTS", str(tmp_path))  # no weights anywhere
    plip = profile_backbone("random:plip-mini")  # PLIP's ModifiedResNet + BERT, random init
    assert (plip.architecture, plip.modalities, plip.attention_pool) == ("cnn", ("image", "text"), True)
    with pytest.raises(ConfigError, match=r"cannot be built without its weights.*random:plip-rn50") as err:
        profile_backbone("plip-rn50-official")
    one_line(err)
