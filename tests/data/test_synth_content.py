"""What the synthetic images, labels and captions say about a person is consistent and visible."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plipbench.cli import app, main
from plipbench.data.synth import (
    PA100K_ATTRIBUTES,
    Identity,
    generate,
    identity_for,
    pa100k_labels,
    render_person,
)
from plipbench.data.synth.captions import (
    STYLES,
    attribute_phrases,
    caption_segments,
    join_segments,
    prompt_caption,
)
from plipbench.data.synth.identity import derive_rng
from plipbench.data.synth.scenes import sample_look

GENDER_WORDS = {"man", "woman", "guy", "lady", "young man", "young woman", "boy", "girl", "elderly man", "old man",
                "elderly woman", "old woman", "old lady"}  # fmt: skip


@pytest.fixture(scope="module")
def pa100k(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pa")
    generate("synth-pa100k", root, identities=60, progress=False)
    return root


@pytest.fixture(scope="module")
def pedes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pedes")
    generate("synth-pedes", root, identities=10, images_per_id=4, progress=False)
    return root


def test_pa100k_labels_follow_identity_and_view(pa100k: Path) -> None:
    import scipy.io

    assert len(PA100K_ATTRIBUTES) == 26
    sidecar = json.loads((pa100k / "plipbench_synth_annotations.json").read_text())
    mat = scipy.io.loadmat(pa100k / "annotation.mat")
    written = {}
    for split in ("train", "val", "test"):
        for n in range(len(mat[f"{split}_images_name"])):
            written[f"data/{mat[f'{split}_images_name'][n][0][0]}"] = mat[f"{split}_label"][n].tolist()
    a = {name: i for i, name in enumerate(PA100K_ATTRIBUTES)}
    views = set()
    for rel, e in sidecar.items():
        ident, labels = Identity(**e["identity"]), e["pa100k"]
        assert written[rel] == labels == pa100k_labels(ident, e["viewpoint"])
        views.add(e["viewpoint"])
        assert (
            labels[a[e["viewpoint"].capitalize()]] == 1
            and labels[a["Front"]] + labels[a["Side"]] + labels[a["Back"]] == 1
        )
        assert labels[a["AgeOver60"]] + labels[a["Age18-60"]] + labels[a["AgeLess18"]] == 1
        assert labels[a["Female"]] == (ident.gender == "female")
        assert labels[a["Trousers"]] + labels[a["Shorts"]] + labels[a["Skirt&Dress"]] == 1
        assert labels[a["Backpack"]] == (ident.bag == "backpack")  # straps show from the front too
        if e["viewpoint"] == "back":
            assert labels[a["Glasses"]] == labels[a["HoldObjectsInFront"]] == labels[a["UpperLogo"]] == 0
        if labels[a["LongCoat"]]:
            assert labels[a["LongSleeve"]] == 1
    assert views == {"front", "side", "back"}


def test_caption_spans_point_at_the_right_phrases(pedes: Path) -> None:
    sidecar = json.loads((pedes / "plipbench_synth_annotations.json").read_text())
    records = json.loads((pedes / "synthpedes_dataset.json").read_text())
    assert all(2 <= len(r["captions"]) <= 3 and len(r["prompt_caption"]) == 1 for r in records)
    seen_slots = set()
    for e in sidecar.values():
        i = Identity(**e["identity"])
        pairs = list(zip(e["captions"], e["phrase_spans"], strict=True)) + [
            (e["prompt_caption"], e["prompt_phrase_spans"])
        ]
        for text, spans in pairs:
            end = 0
            for start, stop, slot in spans:
                assert end <= start < stop <= len(text)  # sorted, non-overlapping
                end = stop
                phrase = text[start:stop]
                seen_slots.add(slot)
                if slot == "gender":
                    assert phrase in GENDER_WORDS
                elif slot == "upper":
                    assert i.upper_colour in phrase
                elif slot == "lower":
                    assert i.lower_colour in phrase
                elif slot == "shoes":
                    assert phrase.startswith(i.shoes_colour)
                elif slot == "belongings":
                    assert i.bag_colour in phrase or i.held_colour in phrase
                elif slot == "head":
                    assert "hair" in phrase or "glasses" in phrase or "head" in phrase or i.headwear in phrase
        assert len(e["attribute_string"].split(",")) == 6
    assert {"gender", "upper", "shoes"} <= seen_slots


def test_two_styles_differ_and_attribute_string_uses_unknown() -> None:
    i = identity_for("synth-pedes", 0, 3)
    texts = {join_segments(caption_segments(i, "front", s, derive_rng("t", s)))[0] for s in STYLES}
    assert len(texts) == len(STYLES)
    bare = dataclasses.replace(i, bag="none", held_object="none", hair_style="bald", headwear="none")
    phrases = attribute_phrases(bare)
    assert phrases[1] == "unknown" and phrases[5] == "unknown"
    text, spans = prompt_caption(phrases, derive_rng("p"))
    assert "unknown" not in text and all(slot not in ("head", "belongings") for *_, slot in spans)


def _render(i: Identity, view: str) -> np.ndarray:
    look = dataclasses.replace(sample_look(derive_rng("look")), occlusion=0.0, noise=0.0, blur=0.0)
    return render_person(i, view, derive_rng("same"), (128, 64), look=look).astype(int)


def test_render_person_is_deterministic_and_attributes_change_pixels() -> None:
    i = dataclasses.replace(identity_for("synth-pa100k", 0, 1), bag="none", held_object="none", glasses="none",
                            headwear="none", upper_pattern="plain")  # fmt: skip
    a = _render(i, "front")
    assert a.shape == (128, 64, 3) and np.array_equal(a, _render(i, "front"))
    changes = {
        ("back", "bag"): "backpack", ("front", "bag"): "backpack", ("front", "glasses"): "sunglasses",
        ("front", "headwear"): "cap", ("front", "upper_pattern"): "stripes", ("back", "upper_pattern"): "plaid",
        ("side", "held_object"): "box", ("front", "shoes_type"): "boots",
    }  # fmt: skip
    for (view, field), value in changes.items():
        base = _render(i, view)
        changed = _render(dataclasses.replace(i, **{field: value}), view)
        assert np.abs(base - changed).sum(axis=2).astype(bool).sum() >= 6, (view, field, value)
    # the upper garment colour dominates the torso region in every view
    red = dataclasses.replace(i, upper_colour="red", upper_type="sweater", upper_sleeves="long")
    for view in ("front", "side", "back"):
        torso = _render(red, view)[45:60, 26:38].reshape(-1, 3).mean(axis=0)
        assert torso[0] > torso[1] + 40 and torso[0] > torso[2] + 40, view


def test_cli_generates_and_previews(tmp_path: Path) -> None:
    out = tmp_path / "market"
    result = CliRunner().invoke(
        app, ["data", "synth", "--out", str(out), "--preset", "synth-market", "--identities", "6",
              "--images-per-id", "2", "--seed", "1", "--preview"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "query" in result.output and "gallery" in result.output and "image files written" in result.output
    assert (out / "preview.png").stat().st_size > 1000
    manifest = json.loads((out / "plipbench_synth_manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["splits"]["train"]["cameras"] >= 1


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys) -> None:
    code = main(
        ["data", "synth", "--out", str(tmp_path / "x"), "--preset", "synth-pa100k", "--layout", "rstpreid"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "synth-pa100k" in err and "rstpreid" in err and len(err.strip().splitlines()) == 1
    assert main(["data", "synth", "--out", str(tmp_path / "y"), "--image-size", "big"]) == 2
