"""Train a digits-family zoo model on mnist5k and write its safetensors + manifest entry.

    python -m training.train_digits --model resnet_digits            # all defaults (what shipped)
    python -m training.train_digits --model all --max-steps 20       # a dry run
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from training.data.datasets import mnist5k
from training.trainer import TrainConfig, train
from zoo import get_spec, list_models
from zoo.hub import save_safetensors_atomic, update_manifest, weights_dir

# Recipes that produced the shipped weights (seeded; results vary by a few tenths across machines).
RECIPES = {
    "alexnet_digits": TrainConfig(epochs=30, batch_size=128, lr=2e-3),
    "vgg_digits": TrainConfig(epochs=30, batch_size=128, lr=3e-3),
    "resnet_digits": TrainConfig(epochs=30, batch_size=128, lr=4e-3),
    # The same recipe without label smoothing: label smoothing squeezes the logits together, so a smoothed
    # teacher's soft targets say little beyond the label (Muller et al. 2019); this one is for distillation.
    "resnet_digits_hard": TrainConfig(epochs=30, batch_size=128, lr=4e-3, label_smoothing=0.0),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="all", help="a digits model name, or 'all'")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--max-steps", type=int, help="stop early (a dry run)")
    ap.add_argument("--out", help="folder for the .safetensors (default: zoo/weights)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    names = list_models("digits") if args.model == "all" else [args.model]
    data = mnist5k()
    for name in names:
        spec = get_spec(name)
        cfg = RECIPES[name]
        cfg.seed = args.seed
        if args.epochs:
            cfg.epochs = args.epochs
        cfg.max_steps = args.max_steps
        torch.manual_seed(args.seed)
        model = spec.builder()
        t0 = time.perf_counter()
        metrics = train(model, data, cfg, on_step=lambda i: print(
            f"{name} epoch {i.epoch + 1} step {i.step}/{i.total_steps} loss {i.loss:.3f} test {i.test_acc:.2f}%",
            flush=True) if i.test_acc is not None else None)
        out_dir = args.out or weights_dir()
        path = save_safetensors_atomic(model.cpu().state_dict(), f"{out_dir}/{spec.weights.filename}",
                                       metadata={"model": name, "test_acc": f"{metrics['test_acc']:.2f}"})
        cmd = "python -m training.train_digits --model " + name + (f" --epochs {args.epochs}" if args.epochs else "")
        entry = {"accuracy": {"mnist5k-test": round(metrics["test_acc"], 2)},
                 "train_seconds": round(time.perf_counter() - t0, 1),
                 "train_command": cmd, "config": cfg.to_dict(), "device": metrics["device"]}
        if args.max_steps is None and args.out is None:
            update_manifest(name, entry)
        print(json.dumps({"model": name, "path": path, **entry, "config": None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
