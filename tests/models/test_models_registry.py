"""Registry: lazy placeholders, entry points, user factories, baselines YAML, and the models CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models import FAMILIES, Registry, create_backbone, load_baseline

USER_FACTORY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def build(width: int = 6, device: str = "cpu"):
    torch.manual_seed(0)
    meta = {"name": "user-net", "family": "user", "embedding_dim": 6, "num_parameters": 168,
            "training_data": ["nothing"]}
    transform = {"size": [32, 16], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    return Net(), meta, transform
"""


def test_registry_is_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_mod_for_test.py").write_text("LOADED = True\ndef make():\n    return 'made'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry = Registry("thing")
    reg.register("a", "lazy_mod_for_test:make")
    assert "a" in reg and "lazy_mod_for_test" not in sys.modules
    assert reg.get("a")() == "made"
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", "x:y")
    with pytest.raises(ConfigError, match="unknown thing 'b'"):
        reg.get("b")


def test_listing_families_imports_nothing_heavy() -> None:
    code = (
        "import sys; from plipbench.models import list_families, baseline_names; "
        "assert 'timm' in list_families() and baseline_names(); "
        "heavy = [m for m in ('torch', 'transformers', 'timm', 'torchreid') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_point_family_from_a_fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_plugin_pkg.py").write_text(
        textwrap.dedent(USER_FACTORY)
        + "\n\ndef family(target, device='cpu', **kw):\n    assert target == 'tiny'\n    return build(device=device)\n"
    )
    dist = tmp_path / "fake_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[plipbench.backbones]\nfakefam = fake_plugin_pkg:family\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    FAMILIES.refresh()
    try:
        assert "fakefam" in FAMILIES.names()
        assert "fake_plugin_pkg" not in sys.modules  # discovered, not imported
        backbone = create_backbone("fakefam:tiny")
        assert backbone.metadata.name == "user-net" and backbone.encode_image(
            __import__("torch").randn(2, 3, 32, 16)
        ).shape == (2, 6)
    finally:
        monkeypatch.undo()
        FAMILIES.refresh()
    assert "fakefam" not in FAMILIES.names()


def test_user_file_factory_via_api_and_cli(tmp_path: Path, cli) -> None:
    path = tmp_path / "my_model.py"
    path.write_text(USER_FACTORY)
    backbone = create_backbone(f"{path}:build")
    assert backbone.metadata.name == "user-net" and backbone.image_transform.size == (32, 16)
    result = cli("models", "check", f"{path}:build", "--arg", "width=6")
    assert result.exit_code == 0, result.output
    assert "all" in result.output and "passed" in result.output
    with pytest.raises(ConfigError, match="does not accept.*colour"):
        create_backbone(f"{path}:build", colour="red")
    with pytest.raises(ConfigError, match="no function 'nope'"):
        create_backbone(f"{path}:nope")


def test_cli_check_exits_2_when_a_check_fails(tmp_path: Path, cli) -> None:
    path = tmp_path / "flaky.py"
    path.write_text(
        USER_FACTORY.replace(
            "return self.conv(x).mean(dim=(2, 3))", "return self.conv(x).mean(dim=(2, 3)) + torch.rand(1)"
        )
    )
    result = cli("models", "check", f"{path}:build")
    assert result.exit_code == 2
    assert "FAIL" in result.output and "deterministic" in result.output


def test_python_module_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "user_mod_factory.py").write_text(USER_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert create_backbone("python:user_mod_factory:build").metadata.embedding_dim == 6


def test_unknown_spec_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'nosuch:thing'.*families"):
        create_backbone("nosuch:thing")


def test_shipped_baselines_validate() -> None:
    from plipbench.models import list_baselines

    entries = list_baselines()
    names = {spec.name for spec, _, err in entries if spec is not None}
    assert not [err for _, _, err in entries if err]
    assert {
        "plip-rn50-official",
        "clip-vit-b16",
        "clip-rn50",
        "timm-resnet50",
        "osnet-x1_0",
        "random-plip-mini",
    } <= names
    for spec, path, _ in entries:
        assert spec is not None and path.stem == spec.name


def test_baseline_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nfamily: random\nmodel: plip-mini\nmodalities: [image]\nembedding_dim: 4\n"
                   "license: MIT\nweigths: {}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'weigths'"):
        load_baseline(str(bad))


def test_missing_weights_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setenv("PLIPBENCH_WEIGHTS", str(tmp_path / "w"))
    with pytest.raises(PlipbenchError, match=r"looked at .*w/PLIP_RN50\.pth\.tar.*drive\.google"):
        create_backbone("plip-rn50-official")
    result = cli("models", "show", "timm-resnet50")
    assert result.exit_code == 0 and "resnet50.a1_in1k" in result.output
    listing = cli("models", "list")
    assert listing.exit_code == 0 and "random-plip-mini" in listing.output and "osnet-x1_0" in listing.output


def test_baseline_from_yaml_file_with_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from plipbench.models.adapters.torchreid_models import build_torchreid

    weights = tmp_path / "weights" / "osnet.pth"
    weights.parent.mkdir()
    model = build_torchreid("osnet_x0_25", pretrained=False).module
    torch.save(model.state_dict(), weights)
    yaml_path = tmp_path / "my-osnet.yaml"
    yaml_path.write_text(
        "name: my-osnet\nfamily: torchreid\nmodel: osnet_x0_25\nmodalities: [image]\nembedding_dim: 512\n"
        "license: MIT\ntraining_data: [Market-1501]\n"
        "weights:\n  path: ${MY_W_DIR:-/nonexistent}/osnet.pth\n  url: https://example.org/osnet\n"
    )
    monkeypatch.setenv("MY_W_DIR", str(weights.parent))
    backbone = create_backbone(str(yaml_path))
    assert backbone.metadata.name == "my-osnet" and backbone.metadata.training_data == ("Market-1501",)
    assert not backbone.metadata.is_zero_shot_on(["market-1501"])
    yaml_path.write_text(yaml_path.read_text() + f'  sha256: "{"ab" * 32}"\n')
    with pytest.raises(PlipbenchError, match="does not match the expected"):
        create_backbone(str(yaml_path))


# -- user factories are foreign code (D18) ----------------------------------------------------------
def _factory_file(tmp_path: Path, body: str, name: str = "factory.py") -> Path:
    path = tmp_path / name
    path.write_text(USER_FACTORY + textwrap.dedent(body))
    return path


def test_a_factory_that_raises_is_one_error_naming_it(tmp_path: Path, capsys) -> None:
    from plipbench.cli import main

    path = _factory_file(tmp_path, """
        def broken(device="cpu"):
            raise ValueError("weights file missing\\nsecond line")
    """)
    with pytest.raises(PlipbenchError, match=rf"backbone factory {path}:broken failed: ValueError: weights file missing$"):
        create_backbone(f"{path}:broken")
    assert main(["eval", "--task", "synth-market1501", "--model", f"{path}:broken", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: backbone factory {path}:broken failed: ValueError") and err.count("\n") == 1


def test_a_factory_that_calls_sys_exit_is_refused_not_a_pass(tmp_path: Path, capsys) -> None:
    from plipbench.cli import main

    path = _factory_file(tmp_path, """
        import sys

        def quits(device="cpu"):
            sys.exit(0)
    """)
    with pytest.raises(PlipbenchError, match=r"called sys.exit\(0\) instead of returning a backbone"):
        create_backbone(f"{path}:quits")
    assert main(["models", "check", f"{path}:quits"]) == 2
    assert "called sys.exit(0)" in capsys.readouterr().err
    assert main(["eval", "--task", "synth-market1501", "--model", f"{path}:quits", "--out", str(tmp_path / "o")]) == 2
    assert "called sys.exit(0)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_sys_exit_at_import_of_a_factory_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "exits_on_import.py"
    path.write_text("import sys\nsys.exit(0)\ndef build(device='cpu'):\n    return None\n")
    with pytest.raises(PlipbenchError, match="called sys.exit"):
        create_backbone(f"{path}:build")


def test_python_module_factory_that_raises_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "raising_mod_factory.py").write_text("def build(device='cpu'):\n    raise KeyError('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PlipbenchError, match="backbone factory python:raising_mod_factory:build failed: KeyError"):
        create_backbone("python:raising_mod_factory:build")


def test_an_encoder_that_calls_sys_exit_is_refused(tmp_path: Path) -> None:
    import torch

    path = _factory_file(tmp_path, "")
    path.write_text(path.read_text().replace("return self.conv(x).mean(dim=(2, 3))", "raise SystemExit(0)"))
    backbone = create_backbone(f"{path}:build")
    with pytest.raises(PlipbenchError, match=r"the image encoder called sys.exit\(0\)"):
        backbone.encode_image(torch.zeros(1, 3, 32, 16))


WRONG_DIM = USER_FACTORY.replace('"embedding_dim": 6', '"embedding_dim": 3')


def test_output_dim_other_than_declared_is_refused_on_the_first_batch(tmp_path: Path, cli) -> None:
    import torch

    path = tmp_path / "wrong_dim.py"
    path.write_text(WRONG_DIM)
    backbone = create_backbone(f"{path}:build")
    with pytest.raises(PlipbenchError, match="returned 6-d embeddings .* declares embedding_dim 3"):
        backbone.encode_image(torch.zeros(2, 3, 32, 16))
    result = cli("models", "check", f"{path}:build")
    assert result.exit_code == 2 and "declares embedding_dim 3" in result.output


def test_eval_saves_no_result_for_a_wrong_dim_backbone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
    try:
        from runner_fixtures import write_tiny_tasks
    finally:
        sys.path.pop(0)
    from plipbench.evaluation.runner import evaluate
    from plipbench.evaluation.tasks import TaskRegistry

    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    registry = TaskRegistry(write_tiny_tasks(tmp_path / "tasks", real_root=tmp_path / "absent"))
    path = tmp_path / "wrong_dim.py"
    path.write_text(WRONG_DIM)
    with pytest.raises(PlipbenchError, match="declares embedding_dim 3"):
        evaluate(f"{path}:build", "tiny-image", out=tmp_path / "out", registry=registry, progress=False)
    assert not list((tmp_path / "out").glob("*.json"))  # nothing saved under the wrong contract


def test_baseline_yaml_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nfamily: [random\nmodel: plip-mini\n")
    with pytest.raises(ConfigError) as info:
        load_baseline(bad)
    assert "\n" not in str(info.value) and "invalid YAML: line 3" in str(info.value)


def test_plip_official_tokenizer_hint_is_what_eval_accepts(tmp_path: Path) -> None:
    import re

    from typer.testing import CliRunner

    from plipbench.cli import app
    from plipbench.models.baselines import find_baseline

    text = find_baseline("plip-rn50-official").read_text()
    eval_help = CliRunner().invoke(app, ["eval", "--help"], terminal_width=200).output
    assert "--arg" not in eval_help
    for sentence in re.split(r"[;:(]", " ".join(line.lstrip("# ") for line in text.splitlines() if "#" in line)):
        if "--arg" in sentence and "has no --arg" not in sentence:  # offered only for models check, which has it
            assert "models check" in sentence, sentence
    assert "args: {tokenizer: /path/to/bert-base-uncased}" in text
    # following the hint: the args mapping the comment shows is what the schema reads
    copy = tmp_path / "my-plip.yaml"
    copy.write_text(text.replace("args: {}", "args: {tokenizer: /path/to/bert-base-uncased}"))
    assert load_baseline(copy).args == {"tokenizer": "/path/to/bert-base-uncased"}


def test_eval_refuses_a_wrong_dim_backbone_before_any_task(tmp_path: Path, capsys) -> None:
    from plipbench.cli import main

    path = tmp_path / "wrong_dim.py"
    path.write_text(WRONG_DIM)
    out = tmp_path / "out"
    # checked once before any task (a fine-tune head would meet the wrong size only as a shape error)
    assert main(["eval", "--task", "synth-market1501", "--model", f"{path}:build", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "declares embedding_dim 3" in err and err.count("\n") == 1
    assert not out.exists()
