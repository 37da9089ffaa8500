"""Train the class-conditional DCGAN on mnist5k; write G and D safetensors, the loss curves and the FID.

    python -m training.generative.train_gan                                      # what shipped (G, D, curves, FID)
    python -m training.generative.train_gan --max-steps 20 --out /tmp/gan        # a dry run (nothing recorded)

Recipe (Radford et al. 2015, with four small-data helpers): Adam(2e-4, betas 0.5/0.999), batch 64,
the non-saturating loss (G maximises log D(G(z))), a projection discriminator for the digit label
(Miyato & Koyama 2018), differentiable translation of every image D sees, real or fake (DiffAugment,
Zhao et al. 2020: D cannot memorise 4,000 digits), and an exponential moving average of G's weights
(Karras et al. 2018), which is what ships, and two guards against every '3' coming out the same '3': a
minibatch-std feature in D (ibid.) and the mode-seeking loss of MSGAN (Mao et al. 2019) for G. The checkpoint
kept is the one whose samples are nearest the *training* set in resnet_digits feature space (the test set is
only used for the reported number).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import torch
import torch.nn.functional as F

from training.data.augment import random_affine
from training.data.datasets import mnist5k
from training.generative.fid import blur, class_histogram, digit_features, fid, frechet_distance, intra_class_spread
from training.generative.train_autoencoder import record_extra
from core.device import get_device
from zoo.generative import Discriminator, Generator
from zoo.hub import save_safetensors_atomic, update_manifest, weights_dir

G_NAME, D_NAME = "gan_digits_g", "gan_digits_d"
DEFAULT_STEPS = 4000


def shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """DiffAugment-style random translation (up to ~2 px), differentiable so G learns through it."""
    return random_affine(x, degrees=0.0, translate=0.08, scale=(1.0, 1.0), generator=gen)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, g: torch.nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), g.parameters()):
        pe.lerp_(p, 1 - decay)
    for be, b in zip(ema.buffers(), g.buffers()):  # BatchNorm running stats: copied
        be.copy_(b)


@torch.no_grad()
def samples(g: Generator, n: int = 1000, seed: int = 123) -> torch.Tensor:
    """n samples with equal digits (0..9 cycling), in eval mode: what the app shows."""
    was = g.training
    g.eval()
    gen = torch.Generator().manual_seed(seed)
    dev = next(g.parameters()).device
    z = torch.randn(n, g.z_dim, generator=gen).to(dev)
    y = (torch.arange(n) % 10).to(dev) if g.n_classes else None
    out = torch.cat([g(z[i:i + 500], None if y is None else y[i:i + 500]).cpu() for i in range(0, n, 500)])
    g.train(was)
    return out


def train_gan(steps: int = 4000, batch: int = 64, lr: float = 2e-4, seed: int = 0, g_width: int = 48,
              d_width: int = 32, ema_decay: float = 0.995, checks: int = 5, mode_seeking: float = 0.1, on_log=None,
              fid_images: int = 4000):
    """-> (G_ema, D, curve [{step, d_loss, g_loss, d_real, d_fake}], checkpoints [{step, fid_train}], seconds).

    fid_images: training digits the checkpoints' FID compares with (and at most 1,000 samples); fewer make a
    dry run fast (the FID is then rough)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = get_device()
    data = mnist5k()
    xtr, ytr = data.train_x.to(dev), data.train_y.to(dev)
    G, D = Generator(width=g_width).to(dev).train(), Discriminator(width=d_width).to(dev).train()
    G_ema = copy.deepcopy(G).eval()
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    train_feats = digit_features(data.train_x[:fid_images])
    curve, checkpoints, best = [], [], (float("inf"), None, 0)
    acc = {"d_loss": 0.0, "g_loss": 0.0, "g_mode_seeking": 0.0, "d_real": 0.0, "d_fake": 0.0}
    log_every, check_every = 25, max(1, steps // checks)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(xtr), (batch,), generator=gen).to(dev)
        real, y = xtr[idx], ytr[idx]
        z = torch.randn(batch, G.z_dim, generator=gen).to(dev)
        fake = G(z, y)
        # D step: real -> 1, fake -> 0 (softplus(-s) = -log sigmoid(s))
        s_real, s_fake = D(shift(real, gen), y), D(shift(fake.detach(), gen), y)
        d_loss = F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # G step: the non-saturating loss, make D call the fakes real ...
        g_loss = F.softplus(-D(shift(fake, gen), y)).mean()
        ms_loss = torch.zeros((), device=dev)
        if mode_seeking:  # ... plus MSGAN's mode-seeking term: two noises for one digit must give two images
            z2 = torch.randn(batch, G.z_dim, generator=gen).to(dev)
            ratio = (fake - G(z2, y)).abs().mean() / (z - z2).abs().mean()
            ms_loss = mode_seeking / (ratio + 1e-5)
        opt_g.zero_grad(set_to_none=True)
        (g_loss + ms_loss).backward()
        opt_g.step()
        ema_update(G_ema, G, ema_decay if step > 100 else 0.0)
        acc["d_loss"] += d_loss.item()
        acc["g_loss"] += g_loss.item()        # the adversarial part only: comparable with D's loss
        acc["g_mode_seeking"] += ms_loss.item()
        acc["d_real"] += torch.sigmoid(s_real).mean().item()
        acc["d_fake"] += torch.sigmoid(s_fake).mean().item()
        if step % log_every == 0:
            curve.append({"step": step, **{k: round(v / log_every, 4) for k, v in acc.items()}})
            acc = dict.fromkeys(acc, 0.0)
            if on_log:
                on_log(curve[-1])
        if step % check_every == 0 or step == steps:
            f = frechet_distance(digit_features(samples(G_ema, n=min(1000, fid_images))), train_feats)
            checkpoints.append({"step": step, "fid_train": round(f, 3), "seconds": round(time.perf_counter() - t0, 1)})
            if on_log:
                on_log(checkpoints[-1])
            if f < best[0]:
                best = (f, {k: v.detach().cpu().clone() for k, v in G_ema.state_dict().items()}, step)
    G_best = Generator(width=g_width)
    if best[1] is not None:
        G_best.load_state_dict(best[1])
    return G_best.eval(), D.eval().cpu(), curve, checkpoints, best[2], time.perf_counter() - t0


def pixel_spread(x: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean per-pixel variance among images of the same digit, averaged over digits (collapse -> 0)."""
    return float(torch.stack([x[labels == c].var(0).mean() for c in range(10)]).mean())


def measure(G: Generator) -> dict:
    """FID vs the test set (with reference points) and how the samples spread over the ten digits."""
    data = mnist5k()
    x = samples(G, 1000)
    counts, pred = class_histogram(x)
    asked = torch.arange(1000) % 10
    return {
        "fid_test": round(fid(x, data.test_x), 3),
        "fid_ref_train_vs_test": round(fid(data.train_x[:1000], data.test_x), 3),
        "fid_ref_blurred_test_vs_test": round(fid(blur(data.test_x), data.test_x), 3),
        "class_counts": counts,
        # within-digit variety of the samples relative to real test digits (1.0 = as varied; 0 = collapsed)
        "intra_class_spread_ratio": round(intra_class_spread(x, asked)
                                          / intra_class_spread(data.test_x, data.test_y), 3),
        "intra_class_pixel_variance_ratio": round(pixel_spread(x, asked) / pixel_spread(data.test_x, data.test_y), 3),
        "asked_digit_agreement_pct": round(100.0 * float((pred == asked).float().mean()), 1),
    }


def command(args) -> str:
    """The exact command that reproduces a run (non-default options spelled out)."""
    cmd = "python -m training.generative.train_gan"
    if args.steps != DEFAULT_STEPS:
        cmd += f" --steps {args.steps}"
    if args.mode_seeking != 0.1:
        cmd += f" --mode-seeking {args.mode_seeking}"
    return cmd + (f" --seed {args.seed}" if args.seed else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--max-steps", type=int, help="stop after this many steps (a dry run; nothing recorded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode-seeking", type=float, default=0.1, help="weight of MSGAN's diversity term (0 = off)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy shared machine)")
    ap.add_argument("--out", help="folder for the .safetensors (default: zoo/weights)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = min(args.steps, args.max_steps) if args.max_steps else args.steps
    G, D, curve, checks, best_step, secs = train_gan(steps, seed=args.seed, mode_seeking=args.mode_seeking,
                                                     on_log=lambda c: print(json.dumps(c), flush=True))
    metrics = measure(G)
    out_dir = args.out or weights_dir()
    meta = {"fid_test": str(metrics["fid_test"]), "step": str(best_step)}
    save_safetensors_atomic(G.state_dict(), f"{out_dir}/{G_NAME}.safetensors", metadata={"model": G_NAME, **meta})
    save_safetensors_atomic(D.state_dict(), f"{out_dir}/{D_NAME}.safetensors", metadata={"model": D_NAME, **meta})
    entry = {"metrics": {k: v for k, v in metrics.items() if k != "class_counts"},
             "class_counts": metrics["class_counts"],
             "train_seconds": round(secs, 1), "train_command": command(args), "steps": steps,
             "kept_step": best_step, "device": str(get_device()),
             "config": {"batch": 64, "lr": 2e-4, "betas": [0.5, 0.999], "g_width": 48, "d_width": 32,
                        "minibatch_std": True, "mode_seeking": args.mode_seeking,
                        "ema_decay": 0.995, "loss": "non-saturating", "diffaugment": "translation", "seed": args.seed}}
    if args.max_steps is None and args.out is None:
        update_manifest(G_NAME, entry)
        update_manifest(D_NAME, {"metrics": {}, "train_command": entry["train_command"], "note": f"pair of {G_NAME}"})
        record_extra(G_NAME, {**entry, "curve": curve, "checkpoints": checks})
    print(json.dumps({"model": G_NAME, **entry}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
