"""PLIP: ModifiedResNet, text encoder, tokenizer, plipbench checkpoints and the official released format."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from plipbench.errors import PlipbenchError
from plipbench.models import check_backbone, create_backbone
from plipbench.models.plip.checkpoint import load_plip_checkpoint, save_plip_checkpoint
from plipbench.models.plip.model import PlipModel, named_config
from plipbench.models.plip.modified_resnet import LAYERS, ModifiedResNet
from plipbench.models.plip.official import (
    IMAGE_KEY,
    TEXT_KEY,
    load_official_checkpoint,
    official_config,
    official_state_dicts,
)
from plipbench.models.plip.text import PlipTextEncoder, masked_mean
from plipbench.models.plip.tokenizer import PEDESTRIAN_SENTENCES, load_tokenizer, train_wordpiece


def test_modified_resnet_stages_and_heads() -> None:
    net = ModifiedResNet((1, 1, 1, 1), width=8, output_dim=24, heads=2, input_size=(64, 32)).eval()
    pooled, maps = net.forward_features(torch.randn(2, 3, 64, 32))
    assert pooled.shape == (2, 24)
    assert [tuple(m.shape[1:]) for m in maps] == [(32, 16, 8), (64, 8, 4), (128, 4, 2), (256, 2, 1)]
    assert net.attnpool is not None and net.attnpool.positional_embedding.shape == (2 * 1 + 1, 256)
    # Another resolution still works (positions interpolated).
    assert net(torch.randn(1, 3, 128, 64)).shape == (1, 24)
    paper = ModifiedResNet((1, 1, 1, 1), width=8, output_dim=24, head="maxpool", input_size=(64, 32))
    assert paper(torch.randn(1, 3, 64, 32)).shape == (1, 24)
    assert not any(k.startswith("attnpool") for k in paper.state_dict())


def test_rn50_key_names_and_size() -> None:
    net = ModifiedResNet(LAYERS["RN50"], width=64, output_dim=768, heads=8, input_size=(256, 128))
    state = net.state_dict()
    assert state["attnpool.positional_embedding"].shape == (33, 2048)
    assert state["attnpool.c_proj.weight"].shape == (768, 2048)
    assert state["conv1.weight"].shape == (32, 3, 3, 3) and state["conv3.weight"].shape == (64, 32, 3, 3)
    assert "layer1.0.downsample.0.weight" in state and "layer4.0.downsample.1.running_var" in state
    n_params = sum(p.numel() for p in net.parameters())
    assert 37.5e6 < n_params < 38.0e6  # brief: about 37.76M


def test_masked_mean_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert masked_mean(hidden, torch.tensor([[1, 1, 0]])).item() == 2.0


def test_text_encoder_freeze_and_projection() -> None:
    bert = {
        "vocab_size": 50,
        "hidden_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    enc = PlipTextEncoder.from_config(bert, joint_dim=16, pooling="mean")
    enc.freeze_lower_layers(2)
    frozen = {n for n, p in enc.named_parameters() if not p.requires_grad}
    assert any(n.startswith("encoder.embeddings") for n in frozen)
    assert any(".layer.1." in n for n in frozen) and not any(".layer.2." in n for n in frozen)
    assert enc.proj is not None and "proj.weight" not in frozen
    ids = torch.randint(0, 50, (3, 7))
    assert enc.eval()(ids, torch.ones_like(ids)).shape == (3, 16)


def test_tokenizer_is_deterministic_and_bert_compatible(tmp_path: Path) -> None:
    a = train_wordpiece(PEDESTRIAN_SENTENCES, vocab_size=500)
    b = train_wordpiece(PEDESTRIAN_SENTENCES, vocab_size=500)
    assert a.get_vocab() == b.get_vocab()
    from plipbench.models.plip.tokenizer import save_tokenizer_dir

    directory = save_tokenizer_dir(a, tmp_path / "tok")
    assert {"vocab.txt", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in directory.iterdir()}
    tok = load_tokenizer(directory)
    enc = tok(["A woman wears a red jacket."], padding="max_length", max_length=12)
    assert enc["input_ids"][0][0] == tok.cls_token_id and tok.sep_token_id in enc["input_ids"][0]
    assert (directory / "vocab.txt").read_text().splitlines()[:2] == ["[PAD]", "[UNK]"]


def test_plip_mini_is_small_and_conforms() -> None:
    backbone = create_backbone("random:plip-mini")
    assert backbone.metadata.num_parameters < 5_000_000
    assert backbone.image_transform.size == (128, 64)
    results = check_backbone(backbone)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    again = create_backbone("random:plip-mini")
    assert again.fingerprint == backbone.fingerprint
    assert create_backbone("random:plip-mini", seed=1).fingerprint != backbone.fingerprint


def test_checkpoint_round_trip_and_strict_keys(tmp_path: Path, tokenizer_dir: Path, cli) -> None:
    torch.manual_seed(0)
    tok = load_tokenizer(tokenizer_dir)
    model = PlipModel(named_config("plip-mini"), vocab_size=len(tok)).eval()
    directory = save_plip_checkpoint(model, tmp_path / "ckpt", tokenizer=tokenizer_dir, extra={"epoch": 3})
    assert {"model.safetensors", "config.json", "tokenizer", "training.json"} <= {
        p.name for p in directory.iterdir()
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind
    with pytest.raises(PlipbenchError, match="already exists"):
        save_plip_checkpoint(model, directory)
    backbone = create_backbone(f"plip:{directory}")
    images = torch.randn(2, 3, 128, 64)
    assert torch.allclose(backbone.encode_image(images), model.encode_image(images), atol=1e-6)
    assert backbone.has_text and backbone.metadata.checkpoint_sha256
    result = cli("models", "check", f"plip:{directory}")
    assert result.exit_code == 0, result.output

    # A renamed key: both names are reported.
    from safetensors.torch import load_file, save_file

    state = load_file(str(directory / "model.safetensors"))
    state["visual.conv1.renamed"] = state.pop("visual.conv1.weight")
    del state["text.encoder.pooler.dense.bias"]
    save_file(state, str(directory / "model.safetensors"))
    with pytest.raises(PlipbenchError) as err:
        load_plip_checkpoint(directory)
    message = str(err.value)
    assert "visual.conv1.weight" in message and "text.encoder.pooler.dense.bias" in message
    assert "visual.conv1.renamed" in message and "2 missing" in message and "1 unexpected" in message


# -- the official released format ------------------------------------------------------------
SMALL_BERT_768 = {  # BERT key names with hidden 768 (the joint size) but 1 layer and a tiny vocab: fast
    "vocab_size": 300, "hidden_size": 768, "num_hidden_layers": 1, "num_attention_heads": 12,
    "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2,
}  # fmt: skip


@pytest.fixture(scope="module")
def official_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlipModel]:
    """A file with the released layout: real RN50 image shapes, BERT keys under ``encoder.``, stale position_ids."""
    torch.manual_seed(0)
    model = PlipModel(official_config(SMALL_BERT_768)).eval()
    with torch.no_grad():  # non-trivial BN statistics so a wrong load would show
        for m in model.visual.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    payload = official_state_dicts(model)
    payload[TEXT_KEY] = dict(payload[TEXT_KEY])
    payload[TEXT_KEY]["encoder.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    payload["epoch"] = 60
    path = tmp_path_factory.mktemp("official") / "PLIP_RN50.pth.tar"
    torch.save(payload, path)
    return path, model


def test_official_checkpoint_loads_strictly(official_file, tokenizer_dir: Path) -> None:
    path, reference = official_file
    keys = torch.load(path, weights_only=True)[IMAGE_KEY].keys()
    assert "attnpool.positional_embedding" in keys and "layer3.5.bn3.running_mean" in keys
    backbone = create_backbone(f"plip:{path}")
    assert backbone.metadata.embedding_dim == 768 and not backbone.has_text
    assert backbone.image_transform.size == (256, 128) and backbone.image_transform.interpolation == "bicubic"
    assert backbone.image_transform.mean == (0.357, 0.323, 0.328)
    images = torch.randn(2, 3, 256, 128)
    assert torch.allclose(backbone.encode_image(images), reference.encode_image(images), atol=1e-5)
    with pytest.raises(PlipbenchError, match="without a tokenizer.*tokenizer=DIR"):
        backbone.encode_text(["a man"])
    with_text = create_backbone(f"plip:{path}", tokenizer=str(tokenizer_dir))
    assert with_text.encode_text(["a man in a red coat", "a girl"]).shape == (2, 768)


def test_official_checkpoint_key_errors_are_all_listed(official_file, tmp_path: Path) -> None:
    path, _ = official_file
    payload = torch.load(path, weights_only=True)
    payload[IMAGE_KEY]["attnpool.cproj.weight"] = payload[IMAGE_KEY].pop("attnpool.c_proj.weight")
    del payload[TEXT_KEY]["encoder.pooler.dense.weight"]
    payload[TEXT_KEY]["encoder.extra.bias"] = torch.zeros(3)
    broken = tmp_path / "broken.pth.tar"
    torch.save(payload, broken)
    with pytest.raises(PlipbenchError) as err:
        load_official_checkpoint(broken)
    message = str(err.value)
    for key in (
        "attnpool.c_proj.weight",
        "attnpool.cproj.weight",
        "encoder.pooler.dense.weight",
        "encoder.extra.bias",
    ):
        assert key in message
    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": {}}, wrong)
    with pytest.raises(PlipbenchError, match="ImgEncoder_state_dict"):
        load_official_checkpoint(wrong)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    with open(path, "wb") as fh:
        pickle.dump({IMAGE_KEY: _Exploit(marker), TEXT_KEY: {}}, fh)
    torch_path = tmp_path / "evil_torch.pth.tar"
    torch.save({IMAGE_KEY: _Exploit(marker)}, torch_path)
    for candidate in (path, torch_path):
        with pytest.raises(PlipbenchError, match="refused"):
            create_backbone(f"plip:{candidate}")
    assert not marker.exists()
