"""The zoo's baselines: every YAML builds the declared architecture, and any baseline takes weights=PATH."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plipbench.errors import PlipbenchError
from plipbench.models import create_backbone, load_baseline

ZOO = ["lup-moco-resnet50", "lup-moco-resnet101", "lup-moco-resnet152", "lupnl-resnet50", "transreid-ssl-vit-s",
       "transreid-ssl-vit-s-ics", "transreid-ssl-vit-b-ics", "pass-vit-s", "pass-vit-b", "hap-vit-b",
       "solider-swin-t", "solider-swin-s", "solider-swin-b"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_zoo_baseline_builds_what_its_yaml_declares(name: str) -> None:
    spec = load_baseline(name)
    assert (
        spec.weights is not None and spec.citation and spec.feature and spec.training_data and spec.parameters
    )
    backbone = create_backbone(name, pretrained=False)  # parameter count and dim are checked against the YAML
    assert (
        backbone.metadata.num_parameters == spec.parameters and backbone.embedding_dim == spec.embedding_dim
    )
    assert backbone.image_transform.size == tuple(spec.args["image_size"])
    assert tuple(backbone.image_transform.mean) == tuple(spec.args["mean"])
    assert not backbone.metadata.is_zero_shot_on(list(spec.training_data))
    assert backbone.metadata.is_zero_shot_on(["Market-1501", "CUHK-PEDES"])


def test_gated_baseline_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLIPBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(
        PlipbenchError, match="not fetchable: the UniHCP weights are sent only after a signed agreement"
    ):
        create_backbone("unihcp-vit-b")


@pytest.mark.parametrize(("name", "why"), [("path-vit-b", "layout .* cannot be confirmed"),
                                           ("rasa-cuhk-pedes", "fit no plipbench family.*re-rank"),
                                           ("aptm-cuhk-pedes", "fit no plipbench family.*re-rank")])  # fmt: skip
def test_listed_models_without_a_loader_say_why(
    name: str, why: str, tmp_path: Path, monkeypatch, cli
) -> None:
    monkeypatch.setenv("PLIPBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(
        PlipbenchError, match=f"baseline {name}: plipbench has no loader for it: .*{why}"
    ) as info:
        create_backbone(name)
    assert "\n" not in str(info.value)
    shown = cli("models", "show", name)
    assert shown.exit_code == 0 and "unsupported" in shown.output
    spec = load_baseline(name)
    spec.weights.resolved().parent.mkdir(parents=True, exist_ok=True)
    spec.weights.resolved().write_bytes(b"a downloaded file")  # still no loader: bench must not add it
    assert spec.weights_present() is False
    with pytest.raises(PlipbenchError, match="has no loader"):
        create_backbone(name)


def test_weights_override_and_models_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    import timm

    torch.manual_seed(0)
    ref = timm.create_model("vit_small_patch16_224", pretrained=False, img_size=(256, 128), num_classes=0)
    path = tmp_path / "mine.pth"
    torch.save(ref.state_dict(), path)
    monkeypatch.setenv("PLIPBENCH_WEIGHTS", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PLIPBENCH_OFFLINE", "1")  # the override must not try to fetch the baseline's own file
    backbone = create_backbone("transreid-ssl-vit-s", weights=str(path))
    assert backbone.metadata.name == "transreid-ssl-vit-s" and backbone.metadata.source == str(path)
    x = torch.randn(1, 3, 256, 128)
    with torch.no_grad():
        assert (backbone.encode_image(x) - ref.forward_features(x)[:, 0]).abs().max().item() < 1e-5
    result = cli("models", "check", "transreid-ssl-vit-s", "--weights", str(path))
    assert result.exit_code == 0, result.output
    assert "all" in result.output and "passed" in result.output


CLIP_ZOO = ["irra-cuhk-pedes", "tbps-clip-icfg-pedes", "clip-reid-vit-b16-market1501"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CLIP_ZOO)
def test_clip_zoo_baseline_builds_and_marks_its_training_benchmark(name: str) -> None:
    pytest.importorskip("open_clip")
    spec = load_baseline(name)
    backbone = create_backbone(name, pretrained=False)
    assert (
        backbone.metadata.num_parameters == spec.parameters and backbone.embedding_dim == spec.embedding_dim
    )
    trained_on = spec.training_data[-1]
    assert not backbone.metadata.is_zero_shot_on([trained_on])  # its zero-shot cells there get the dagger
    assert backbone.metadata.is_zero_shot_on(["PA-100K"])


def test_models_show_and_list_describe_the_zoo(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLIPBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    shown = cli("models", "show", "solider-swin-b")
    assert shown.exit_code == 0, shown.output
    for text in ("gdrive: https://drive.google.com/uc?id=1uh7tO34tMf73MJfFqyFEGx42UBktTbZU", "not pinned",
                 "Beyond Appearance", "mean over tokens of norm3", "86.8M", "fetchable"):  # fmt: skip
        assert text in shown.output, text
    listing = cli("models", "list")
    assert listing.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in listing.output.splitlines() if line.startswith("│")}
    assert (
        "gated" in rows["unihcp-vit-b"]
        and "fetchable" in rows["pass-vit-b"]
        and "missing" in rows["irra-cuhk-pedes"]
    )
    assert "no loader" in rows["path-vit-b"] and "no loader" in rows["rasa-cuhk-pedes"]
    assert "library cache" in rows["clip-vit-b16"] and "library cache" in rows["clip-rn50"]
    assert "fetchable" in rows["transreid-ssl-vit-b-ics"] and "88.4M" in rows["transreid-ssl-vit-b-ics"]
    assert (
        "LUPerson" in rows["hap-vit-b"]
        and "85.7M" in rows["hap-vit-b"]
        and "Apache-2.0" in rows["solider-swin-t"]
    )
