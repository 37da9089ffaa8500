"""Benchmark the autoencoders and the GAN: the issue's numbers as JSON.

    python -m bench.bench_generative            # prints one JSON object

Autoencoders on the mnist5k test split (PSNR, peak 1.0, of the MSE over all 784,000 test pixels) next to
PCA with the same number of components, a random-noise check, denoising; the GAN's Frechet distance in
resnet_digits features (1,000 samples vs the test set, with reference points), its class coverage, and
CPU latencies (median of repeated runs; the machine's load average is reported with them).
"""
from __future__ import annotations

import json
import os
import statistics
import time

import torch


def _median_ms(fn, reps: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def bench_autoencoders() -> dict:
    from training.data.datasets import mnist5k
    from zoo.generative_ops import PCA, add_noise, load, psnr, psnr_each, random_noise_images, reconstruct_batch

    d = mnist5k()
    x = d.test_x
    out = {}
    for name in ("ae_digits_16", "dae_digits_16", "ae_digits_2"):
        m = load(name)
        r = reconstruct_batch(m, x)
        base = PCA(d.train_x, m.latent)(x)
        noise = random_noise_images(1000, seed=7)
        rn = reconstruct_batch(m, noise)
        row = {"latent": m.latent, "test_psnr_db": round(psnr(r, x), 2),
               "test_psnr_db_mean_per_image": round(float(psnr_each(r, x).mean()), 2),
               "pca_psnr_db": round(psnr(base, x), 2), "pca_psnr_db_clamped": round(psnr(base.clamp(0, 1), x), 2),
               "digits_beating_pca_pct": round(100 * float((psnr_each(r, x) > psnr_each(base, x)).float().mean()), 1),
               "random_noise_in_out_psnr_db": round(psnr(rn, noise), 2),
               "random_noise_out_mean_vs_in_mean": [round(float(rn.mean()), 3), round(float(noise.mean()), 3)]}
        for s in (0.3, 0.5):
            nx = add_noise(x, s, seed=2)
            row[f"noise{s}_input_psnr_db"] = round(psnr(nx, x), 2)
            row[f"noise{s}_output_psnr_db"] = round(psnr(reconstruct_batch(m, nx), x), 2)
        out[name] = row
    return out


def bench_gan() -> dict:
    from training.data.datasets import mnist5k
    from training.generative.fid import blur, class_histogram, digit_features, frechet_distance
    from training.generative.train_gan import pixel_spread
    from zoo.generative_ops import sample

    d = mnist5k()
    ref = digit_features(d.test_x)
    fd = lambda imgs: round(frechet_distance(digit_features(imgs), ref), 3)  # noqa: E731
    x = sample(123, 1000)                                   # digits 0..9 in turn: 100 each asked
    counts, pred = class_histogram(x)
    res = {
        "fid_1000_samples_vs_test": fd(x),
        "fid_1000_samples_seed2_vs_test": fd(sample(2, 1000)),
        "fid_truncation_1.0_vs_test": fd(sample(123, 1000, truncation=1.0)),
        "ref_fid_train_first1000_vs_test": fd(d.train_x[:1000]),
        "ref_fid_train_all4000_vs_test": fd(d.train_x),
        "ref_fid_blurred_test_sigma1_vs_test": fd(blur(d.test_x, 1.0)),
        "ref_fid_blurred_test_sigma0.7_vs_test": fd(blur(d.test_x, 0.7)),
        "ref_fid_uniform_noise_vs_test": fd(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0))),
        "class_counts_by_resnet_digits": counts,
        "class_count_min_max": [min(counts), max(counts)],
        "asked_digit_agreement_pct": round(100 * float((pred == torch.arange(1000) % 10).float().mean()), 1),
        # variety among samples of one digit relative to real digits of that digit (1 = as varied, 0 = copies)
        "intra_class_pixel_variance_ratio": round(pixel_spread(x, torch.arange(1000) % 10)
                                                  / pixel_spread(d.test_x, d.test_y), 3),
    }
    return res


def bench_latency() -> dict:
    from training.data.datasets import mnist5k
    from zoo.generative_ops import load, sample

    g, ae = load("gan_digits_g"), load("ae_digits_16")
    one = mnist5k().test_x[:1]
    res = {}
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            res[f"threads_{threads}"] = {
                "gan_64_samples_ms": _median_ms(lambda: sample(0, 64), 50),
                "gan_64_samples_generator_only_ms": _median_ms(
                    lambda: g(torch.randn(64, 64), torch.arange(64) % 10), 50),
                "one_reconstruction_ms": _median_ms(lambda: ae(one), 200),
            }
    torch.set_num_threads(default_threads)
    res["device"] = "cpu"
    res["load_average_1min"] = round(os.getloadavg()[0], 2)
    res["cpu_count"] = os.cpu_count()
    return res


def main() -> None:
    t0 = time.perf_counter()
    out = {"autoencoders": bench_autoencoders(), "gan": bench_gan(), "latency_cpu": bench_latency()}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
