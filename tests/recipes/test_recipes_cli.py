"""``plipbench recipes list | show``: the resolved recipe as JSON, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from plipbench.cli import app, main
from plipbench.models.metadata import IMAGENET_MEAN, IMAGENET_STD
from plipbench.recipes import recipe_names


def test_show_bot_for_timm_resnet50_as_json() -> None:
    result = CliRunner().invoke(
        app, ["recipes", "show", "bot", "--backbone", "timm:resnet50", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    recipe = data["recipe"]
    assert data["backbone"]["architecture"] == "cnn" and data["backbone"]["spec"] == "timm:resnet50"
    assert (data["mean"], data["std"]) == (list(IMAGENET_MEAN), list(IMAGENET_STD))
    assert data["overrides"] == {} and data["short_run"] is False and data["paper_compatible"] is False
    # downstream-recipes.md §9.1, "The bot recipe, in full"
    assert recipe["input"]["size"] == [256, 128] and recipe["last_stride"] == 1
    assert recipe["optimizer"]["name"] == "adam" and recipe["optimizer"]["betas"] == [0.9, 0.999]
    assert (recipe["optimizer"]["lr"], recipe["optimizer"]["weight_decay"], recipe["optimizer"]["coupled_l2"]) == (
        3.5e-4, 5e-4, True
    )  # fmt: skip
    assert recipe["warmup"] == {"epochs": 10, "start_factor": 0.01, "method": "linear"}
    assert recipe["schedule"]["milestones"] == [40, 70] and recipe["epochs"] == 120
    assert recipe["sampler"]["batch_size"] // recipe["sampler"]["instances"] == 16
    assert recipe["losses"]["ce"]["label_smoothing"] == 0.1 and recipe["losses"]["triplet"]["margin"] == 0.3
    assert recipe["augment"]["random_erasing"]["probability"] == 0.5 and recipe["augment"]["pad"] == 10
    assert recipe["test"]["feature"] == "after-bn" and recipe["neck"]["frozen_bias"] is True
    assert "variants" in recipe and recipe["variants"] == []


def test_show_records_short_overrides_and_other_formats() -> None:
    result = CliRunner().invoke(
        app,
        [
            "recipes",
            "show",
            "bot",
            "--backbone",
            "timm:resnet50",
            "--set",
            "epochs_scale=0.1",
            "--format",
            "yaml",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "short_run: true" in result.stdout and "overrides: {epochs_scale: 0.1}" in result.stdout
    shipped = CliRunner().invoke(app, ["recipes", "show", "transreid"])
    assert shipped.exit_code == 0 and "person-pretrained-vit" in shipped.stdout


def test_list_shows_every_recipe() -> None:
    result = CliRunner().invoke(app, ["recipes", "list"])
    assert result.exit_code == 0
    assert all(name in result.stdout for name in recipe_names())


def test_errors_are_one_line_with_exit_2(capsys) -> None:
    cases = {
        ("recipes", "show", "nope"): "error: unknown recipe 'nope'; known: bot, ",
        ("recipes", "show", "bot", "--backbone", "timm:resnet50", "--set", "optimizer.lrr=1"): (
            "error: override: unknown recipe key 'optimizer.lrr' (known: "
        ),
        (
            "recipes",
            "show",
            "irra",
            "--backbone",
            "timm:resnet50",
        ): "error: recipe 'irra' is for vit backbones",
        ("recipes", "show", "bot", "--format", "xml"): "error: --format must be one of table, json, yaml",
    }
    for argv, start in cases.items():
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.startswith(start) and err.count("\n") == 1, (argv, err)


def test_recipes_help_loads_no_heavy_library() -> None:
    heavy = ("torch", "torchvision", "transformers", "timm", "torchreid", "sklearn", "scipy", "pandas")
    code = (
        "import sys\nfrom plipbench.cli import main\n"
        "for argv in (['recipes', '--help'], ['recipes', 'show', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        f"print('HEAVY', [m for m in {heavy!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []", out.stdout[-500:]
