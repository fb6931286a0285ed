"""Pre-training speed: a PLIP step (IVLC + TIC + IAP) against a CLIP-objective step on the same
encoders and batch, and the time to pre-train the mini configuration on the default synthetic corpus.

    python benchmarks/pretrain.py [--config mini] [--batch 64] [--steps 10] [--quick]

Target: a PLIP step costs at most 2.5x a CLIP step. Steps include forward, backward and the
optimizer update. ``--quick`` skips the full mini pre-training run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def _batch(tokenizer, model_config, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    from plipbench.pretrain.attribute_prediction import locate_phrases, token_phrase_index

    gen = torch.Generator().manual_seed(seed)
    colours = ["red", "blue", "green", "black", "white", "grey", "yellow", "pink"]
    captions, spans = [], []
    for i in range(batch):
        up, low = colours[i % 8], colours[(3 * i + 1) % 8]
        text = f"A young man with short black hair wears a {up} jacket, {low} jeans and white sneakers, carrying a bag."
        captions.append(text)
        spans.append(locate_phrases(text, [f"{up} jacket", f"{low} jeans", "white sneakers", "black hair"]))
    enc = tokenizer(captions, padding="longest", truncation=True, max_length=model_config.max_length,
                    return_offsets_mapping=True, return_tensors="pt")
    phrase = torch.tensor([token_phrase_index(o.tolist(), s) for o, s in zip(enc["offset_mapping"], spans, strict=True)])
    h, w = model_config.image.input_size
    return {"images": torch.randn(batch, 3, h, w, generator=gen), "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"], "token_phrase": phrase,
            "pids": torch.arange(batch) // 4}


def _timed_steps(trainer, optimizer, data, steps: int) -> float:
    """Optimizer steps per second (after one warm-up step)."""
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        parts = trainer(data, 0.5, gen)
        parts["total"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - started)


def step_speed(config_name: str, batch: int, steps: int) -> dict[str, float]:
    from plipbench.models.plip.model import PlipModel
    from plipbench.models.plip.tokenizer import PEDESTRIAN_SENTENCES, train_wordpiece
    from plipbench.pretrain.config import load_config
    from plipbench.pretrain.pretrainer import PlipPretrainer
    from plipbench.pretrain.trainer import build_model_config

    out: dict[str, float] = {}
    for label, overrides in (("plip", []), ("clip", ["objectives.ivlc=0", "objectives.tic=0", "objectives.iap=0",
                                                      "objectives.clip=1"])):
        config = load_config(config_name, overrides)
        model_config = build_model_config(config)
        with tempfile.TemporaryDirectory() as tmp:
            from plipbench.models.plip.tokenizer import load_tokenizer, save_tokenizer_dir

            save_tokenizer_dir(train_wordpiece(PEDESTRIAN_SENTENCES, vocab_size=2000), f"{tmp}/tokenizer")
            tokenizer = load_tokenizer(f"{tmp}/tokenizer")
        torch.manual_seed(0)
        model = PlipModel(model_config, vocab_size=len(tokenizer))
        trainer = PlipPretrainer(model, config, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer))
        optimizer = torch.optim.AdamW([p for p in trainer.parameters() if p.requires_grad], lr=1e-4)
        data = _batch(tokenizer, model_config, batch)

        out[label] = _timed_steps(trainer, optimizer, data, steps) * batch
    out["ratio"] = out["clip"] / out["plip"]  # cost of a PLIP step in CLIP steps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mini")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="skip the full mini pre-training run")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, config {args.config}, batch {args.batch}")
    speed = step_speed(args.config, args.batch, args.steps)
    print(f"PLIP step (IVLC+TIC+IAP): {speed['plip']:8.1f} samples/s")
    print(f"CLIP step (InfoNCE):      {speed['clip']:8.1f} samples/s")
    print(f"PLIP step / CLIP step cost: {speed['ratio']:.2f}x (target <= 2.5x)")
    if not args.quick:
        import os

        from plipbench.pretrain.config import load_config
        from plipbench.pretrain.trainer import pretrain

        with tempfile.TemporaryDirectory() as tmp:
            os.environ.setdefault("PLIPBENCH_CACHE", os.path.join(tmp, "cache"))
            started = time.perf_counter()
            summary = pretrain(load_config(args.config), os.path.join(tmp, "run"), progress=False)
            print(f"pre-training {args.config} on the default corpus ({summary['corpus_images']} images, "
                  f"{summary['steps']} steps, corpus generation included): {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
