"""Train a zoo autoencoder on mnist5k and write its safetensors, curves and measured PSNR.

    python -m training.generative.train_autoencoder --latent 16                 # ae_digits_16 (what shipped)
    python -m training.generative.train_autoencoder --latent 2                  # ae_digits_2, the map
    python -m training.generative.train_autoencoder --latent 16 --noise 0.5     # dae_digits_16, denoising
    python -m training.generative.train_autoencoder --latent 16 --max-steps 20 --out /tmp/ae   # a dry run

Loss: per-pixel binary cross-entropy (sharper digits than MSE for the same PSNR budget); data are the
mnist5k tensors sliced into batches, lightly augmented (random affine) so 4,000 digits go further.
The denoising variant adds Gaussian noise of a random std in [0, --noise] to each input; the target
stays the clean digit (Vincent et al. 2008).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from training.data.augment import random_affine
from training.data.datasets import mnist5k
from core.device import get_device
from zoo.generative import EXTRA_FILE, ConvAutoencoder, read_extra
from zoo.generative_ops import PCA, add_noise, psnr, psnr_each, random_noise_images, reconstruct_batch
from zoo.hub import atomic_write_bytes, save_safetensors_atomic, update_manifest, weights_dir


def default_name(latent: int, noise: float) -> str:
    return f"{'dae' if noise > 0 else 'ae'}_digits_{latent}"


def noisy(x: torch.Tensor, max_sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Each image gets Gaussian noise of its own std drawn from [0, max_sigma], clipped to [0, 1]."""
    sig = torch.rand(len(x), 1, 1, 1, generator=gen) * max_sigma
    return (x + sig * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def train_autoencoder(latent: int = 16, noise: float = 0.0, steps: int = 2500, batch: int = 64, lr: float = 3e-3,
                      seed: int = 0, augment: bool = True, on_step=None):
    """Train a ConvAutoencoder(latent) -> (model on CPU, curve [{step, loss, test_psnr}], seconds)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = get_device()
    data = mnist5k()
    xtr, xte = data.train_x, data.test_x
    model = ConvAutoencoder(latent).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    curve, t0, run = [], time.perf_counter(), 0.0
    eval_every = max(1, steps // 20)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(xtr), (batch,), generator=gen)
        target = xtr[idx]
        if augment:
            target = random_affine(target, degrees=8, translate=0.05, scale=(0.95, 1.05), generator=gen)
        inp = noisy(target, noise, gen) if noise > 0 else target
        logits = model.decode_logits(model.encode(inp.to(dev)))
        loss = F.binary_cross_entropy_with_logits(logits, target.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run = loss.item() if step == 1 else 0.95 * run + 0.05 * loss.item()
        if step % eval_every == 0 or step == steps:
            model.eval()
            p = psnr(reconstruct_batch(model, xte), xte)
            model.train()
            curve.append({"step": step, "loss": round(run, 5), "test_psnr": round(p, 3)})
            if on_step:
                on_step(curve[-1])
    return model.eval().cpu(), curve, time.perf_counter() - t0


def measure(model: ConvAutoencoder, noise: float = 0.0) -> dict:
    """The numbers the issue asks for, on the mnist5k test split."""
    data = mnist5k()
    xte = data.test_x
    rec = reconstruct_batch(model, xte)
    base = PCA(data.train_x, model.latent)
    base_rec = base(xte)
    rnd = random_noise_images(200, seed=1)
    rnd_out = reconstruct_batch(model, rnd)
    m = {
        "test_psnr_db": round(psnr(rec, xte), 2),
        "test_psnr_db_mean_per_image": round(float(psnr_each(rec, xte).mean()), 2),
        f"pca{model.latent}_psnr_db": round(psnr(base_rec, xte), 2),
        f"pca{model.latent}_psnr_db_clamped": round(psnr(base_rec.clamp(0, 1), xte), 2),
        # Uniform noise in: how close is the output to it? (a copy machine would score high)
        "noise_in_psnr_db": round(psnr(rnd_out, rnd), 2),
    }
    if noise > 0:
        for s in (0.3, 0.5):
            noisy_x = add_noise(xte, s, seed=2)
            m[f"noisy{s}_input_psnr_db"] = round(psnr(noisy_x, xte), 2)
            m[f"noisy{s}_denoised_psnr_db"] = round(psnr(reconstruct_batch(model, noisy_x), xte), 2)
    return m


def map_extent_of(model: ConvAutoencoder, margin: float = 0.1) -> list[float]:
    """[xmin, xmax, ymin, ymax]: the 1st-99th percentile box of the test codes, padded (as
    training.generative.latent_space)."""
    with torch.no_grad():
        z = model.encode(mnist5k().test_x)
    lo, hi = torch.quantile(z, 0.01, dim=0), torch.quantile(z, 0.99, dim=0)
    pad = (hi - lo) * margin
    lo, hi = lo - pad, hi + pad
    return [round(float(v), 4) for v in (lo[0], hi[0], lo[1], hi[1])]


def record_extra(name: str, entry: dict) -> None:
    """Store curves + metrics in zoo/weights/generative.json (read by the zoo entry and the tabs)."""
    data = read_extra()
    data[name] = entry
    atomic_write_bytes(EXTRA_FILE, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--noise", type=float, default=0.0, help="max input-noise std (0 = plain autoencoder)")
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy shared machine)")
    ap.add_argument("--max-steps", type=int, help="stop after this many steps (a dry run; nothing recorded)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", help="zoo name (default ae_digits_<latent> / dae_digits_<latent>)")
    ap.add_argument("--out", help="folder for the .safetensors (default: zoo/weights)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.name or default_name(args.latent, args.noise)
    steps = min(args.steps, args.max_steps) if args.max_steps else args.steps
    model, curve, secs = train_autoencoder(args.latent, args.noise, steps, lr=args.lr, seed=args.seed,
                                           on_step=lambda c: print(json.dumps(c), flush=True))
    metrics = measure(model, args.noise)
    out_dir = args.out or weights_dir()
    path = save_safetensors_atomic(model.state_dict(), f"{out_dir}/{name}.safetensors",
                                   metadata={"model": name, "latent": str(args.latent), "noise": str(args.noise),
                                             "test_psnr_db": str(metrics["test_psnr_db"])})
    cmd = (f"python -m training.generative.train_autoencoder --latent {args.latent}"
           + (f" --noise {args.noise}" if args.noise else ""))
    entry = {"metrics": metrics, "train_seconds": round(secs, 1), "train_command": cmd, "steps": steps,
             "config": {"latent": args.latent, "noise": args.noise, "lr": args.lr, "batch": 64, "seed": args.seed,
                        "loss": "bce", "augment": True}, "device": str(get_device())}
    extra = {}
    if args.latent == 2:  # the map's axes: the tab's sliders span them without loading the model at start-up
        extra["map_extent"] = map_extent_of(model)
    if args.max_steps is None and args.out is None:
        update_manifest(name, entry)
        record_extra(name, {**entry, **extra, "curve": curve})
    print(json.dumps({"model": name, "path": path, **entry}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
