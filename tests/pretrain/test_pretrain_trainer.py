from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from pretrain_fixtures import tiny_config_tree
from safetensors.torch import load_file

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.pretrain.config import load_config, validate_config
from plipbench.pretrain.trainer import lr_factor, pretrain


def test_pretrain_runs_all_objectives_and_exports_a_loadable_model(tiny_corpus, tmp_path) -> None:
    config = validate_config(tiny_config_tree(tiny_corpus))
    summary = pretrain(config, tmp_path / "run", max_steps=3, progress=False)
    assert summary["steps"] == 3
    assert set(summary["final_losses"]) == {"ivlc", "tic", "iap", "total"}
    assert summary["ranks_in_sync"] is True
    assert "0 identities have fewer than K=2 images" in summary["sampler"]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    assert all(x["total"] > 0 for x in lines)

    from plipbench.models import create_backbone

    backbone = create_backbone(f"plip:{tmp_path / 'run' / 'model'}")
    import torch

    emb = backbone.encode_image(torch.zeros(2, 3, 64, 32))
    assert emb.shape == (2, 32)
    assert backbone.encode_text(["a man in a red shirt"]).shape == (1, 32)


def test_clip_objective_only(tiny_corpus, tmp_path) -> None:
    config = validate_config(tiny_config_tree(tiny_corpus, ivlc=0.0, tic=0.0, iap=0.0, clip=1.0))
    summary = pretrain(config, tmp_path / "run", max_steps=2, progress=False)
    assert set(summary["final_losses"]) == {"clip", "total"}


def test_lr_schedule_warmup_and_milestones() -> None:
    optim = validate_config({"data": {"preset": "synth-pedes"}}).optim  # paper: warm-up 10, x0.1 at 30 and 50
    assert lr_factor(0, 10, optim) == pytest.approx(1 / 100)
    assert lr_factor(99, 10, optim) == pytest.approx(1.0)
    assert lr_factor(300, 10, optim) == pytest.approx(0.1)
    assert lr_factor(500, 10, optim) == pytest.approx(0.01)


def test_config_errors_name_the_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'optim.lrr'"):
        load_config("mini", ["optim.lrr=0.1"])
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config("mini", ["optim.lr=fast"])
    with pytest.raises(ConfigError, match="unknown pre-training config 'nope'"):
        load_config("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sampler: {identities_per_batch: 2, images_per_identity: 2}\nfoo: 1\n")
    with pytest.raises(ConfigError, match=f"{bad}.*unknown key 'foo'"):
        load_config(bad)
    assert load_config("mini", ["objectives.tic=0"]).objectives.tic == 0.0


def test_named_configs_validate() -> None:
    paper = load_config("rn50-paper")
    assert (paper.optim.lr, paper.optim.text_lr_scale, paper.optim.epochs) == (0.002, 0.1, 70)
    assert (paper.objectives.tic, paper.objectives.iap) == (0.02, 0.1)
    assert load_config("mini").model == "plip-mini"


def test_resume_refuses_other_config_and_corrupt_checkpoint(tiny_corpus, tmp_path) -> None:
    run = tmp_path / "run"
    pretrain(validate_config(tiny_config_tree(tiny_corpus)), run, max_steps=4, progress=False)
    other = tiny_config_tree(tiny_corpus)
    other["optim"]["lr"] = 0.5
    with pytest.raises(ConfigError, match="optim.lr"):
        pretrain(validate_config(other), run, resume=True, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        pretrain(validate_config(tiny_config_tree(tiny_corpus)), run, max_steps=5, progress=False)
    checkpoints = sorted((run / "checkpoints").glob("step-*.pt"))
    assert [c.name for c in checkpoints] == ["step-00000002.pt", "step-00000004.pt"]
    checkpoints[-1].write_bytes(b"not a checkpoint")
    with pytest.raises(PlipbenchError, match="corrupt.*step-00000002.pt is intact"):
        pretrain(validate_config(tiny_config_tree(tiny_corpus)), run, resume=True, max_steps=6, progress=False)
    assert checkpoints[0].is_file()


def _cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = os.environ | {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "plipbench.cli", *args], env=env, **kwargs)


def test_sigkill_then_resume_gives_the_same_weights(tiny_corpus, tmp_path) -> None:
    config_file = tmp_path / "tiny.yaml"
    tree = tiny_config_tree(tiny_corpus)
    tree["train"]["checkpoint_every"] = 1
    config_file.write_text(yaml.safe_dump(tree))
    steps = "8"
    ref = _cli(["pretrain", "-c", str(config_file), "--out", str(tmp_path / "ref"), "--max-steps", steps, "--no-progress"])
    assert ref.wait(timeout=300) == 0

    run = tmp_path / "killed"
    proc = _cli(["pretrain", "-c", str(config_file), "--out", str(run), "--max-steps", steps, "--no-progress"])
    deadline = time.time() + 240
    while time.time() < deadline and not list((run / "checkpoints").glob("step-0000000[3-7].pt")):
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model").exists(), "the run finished before it could be killed"
    resumed = _cli(["pretrain", "-c", str(config_file), "--out", str(run), "--max-steps", steps, "--resume",
                    "--no-progress"])
    assert resumed.wait(timeout=300) == 0
    a = load_file(str(tmp_path / "ref" / "model" / "model.safetensors"))
    b = load_file(str(run / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
    log = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert log == list(range(1, int(steps) + 1))


@pytest.mark.distributed
def test_two_gloo_processes_stay_in_sync(tiny_corpus, tmp_path) -> None:
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config_tree(tiny_corpus)))
    out = tmp_path / "ddp"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "plipbench.cli", "pretrain", "-c", str(config_file), "--out", str(out), "--max-steps", "3",
           "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "pretrain_summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["ranks_in_sync"] is True
    assert summary["steps"] == 3


def test_corpus_with_empty_caption_is_refused(tiny_corpus, tmp_path) -> None:
    data = json.loads((tiny_corpus / "synthpedes_dataset.json").read_text())
    data[0]["captions"] = ["   "]
    (tiny_corpus / "synthpedes_dataset.json").write_text(json.dumps(data))
    from plipbench.errors import DataError

    with pytest.raises(DataError, match="empty caption"):
        pretrain(validate_config(tiny_config_tree(tiny_corpus)), tmp_path / "run", max_steps=1, progress=False)


def test_cli_reports_bad_override_in_one_line(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "plipbench.cli", "pretrain", "--out", str(tmp_path), "optim.nope=1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: " + done.stderr.strip()[len("error: "):]]
    assert "unknown key 'optim.nope'" in done.stderr and "Traceback" not in done.stderr




def test_nested_model_overrides_merge_into_the_named_config() -> None:
    from plipbench.pretrain.trainer import build_model_config

    config = load_config("mini", ["model_overrides.image.input_size=[64, 32]", "model_overrides.text.bert.hidden_size=64"])
    model = build_model_config(config)
    assert model.image.input_size == (64, 32)
    assert model.image.width == 16 and model.image.layers == (1, 1, 1, 1), "the rest of plip-mini is kept"
    assert model.text.bert["hidden_size"] == 64 and model.text.bert["num_hidden_layers"] == 2


def test_timm_image_encoder_trains_and_round_trips(tiny_corpus, tmp_path) -> None:
    import torch

    tree = tiny_config_tree(tiny_corpus)
    tree["model_overrides"] |= {"image.timm": "resnet10t"}
    summary = pretrain(validate_config(tree), tmp_path / "run", max_steps=1, progress=False)
    assert set(summary["final_losses"]) == {"ivlc", "tic", "iap", "total"}

    from plipbench.models import create_backbone

    backbone = create_backbone(f"plip:{tmp_path / 'run' / 'model'}")
    assert backbone.encode_image(torch.zeros(1, 3, 64, 32)).shape == (1, 32)

    from plipbench.models.plip.timm_encoder import TimmImageEncoder

    encoder = TimmImageEncoder("resnet10t", output_dim=16)
    global_emb, maps = encoder.forward_features(torch.zeros(2, 3, 64, 32))
    assert global_emb.shape == (2, 16) and [m.shape[1] for m in maps] == list(encoder.feature_dims)
    assert [m.shape[-1] for m in maps] == [8, 4, 2, 1], "strides 4, 8, 16, 32"
    import timm

    weights = tmp_path / "resnet10t.pth"
    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), weights)
    TimmImageEncoder("resnet10t", output_dim=16, weights=str(weights))
    state = timm.create_model("resnet10t", pretrained=False).state_dict()
    state["layer1.0.conv1.renamed"] = state.pop("layer1.0.conv1.weight")
    torch.save(state, weights)
    with pytest.raises(PlipbenchError, match="layer1.0.conv1"):
        TimmImageEncoder("resnet10t", output_dim=16, weights=str(weights))


def test_resume_sweeps_temp_files_a_killed_checkpoint_write_left(tiny_corpus, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    config = validate_config(tiny_config_tree(tiny_corpus))
    pretrain(config, run, max_steps=2, progress=False)
    stale = run / "checkpoints" / ".step-00000004.pt.k2j3x9.tmp"  # what a SIGKILL in atomic_write leaves
    stale.write_bytes(b"\0" * 4096)
    stale_model = run / ".model.abc123.tmp"
    stale_model.mkdir()
    pretrain(config, run, resume=True, max_steps=4, progress=False)
    assert not stale.exists() and not stale_model.exists()
    assert "removed 2 temporary file(s) left by an interrupted run" in capsys.readouterr().err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002.pt", "step-00000004.pt"]


def test_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_file(tiny_corpus, tmp_path, monkeypatch) -> None:
    import errno

    import torch

    from plipbench.errors import OutputError

    def full_disk_save(obj, fh, *args, **kwargs) -> None:
        fh.write(b"PK\x03\x04 half a zip")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:  # torch reports the failed write like this, with the OSError as context
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    monkeypatch.setattr(torch, "save", full_disk_save)
    run = tmp_path / "run"
    with pytest.raises(OutputError) as info:
        pretrain(validate_config(tiny_config_tree(tiny_corpus)), run, max_steps=2, progress=False)
    message = str(info.value)
    assert message == f"cannot write checkpoint {run / 'checkpoints' / 'step-00000002.pt'}: no space left on device (disk full)"
    assert list((run / "checkpoints").iterdir()) == []
