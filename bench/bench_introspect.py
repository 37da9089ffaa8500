"""Benchmark the Look inside tab's activation view, in process: forward pass + capture + rendering the feature-map
grid, for a digits model (target <= 150 ms) and ResNet-18 at 224x224 (target <= 1 s), plus the pieces around it.

    python -m bench.bench_introspect [--repeats 15] [--threads N]

ResNet-18 runs with random-init weights (offline there are no ImageNet weights): the cost of a forward pass and
of drawing does not depend on the values of the weights. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time


def _time(fn, repeats: int) -> dict:
    fn()  # warm-up: first call pays for tracing, oneDNN kernels, the colormap
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(ts), 2), "min_ms": round(min(ts), 2),
            "p90_ms": round(sorted(ts)[int(0.9 * (len(ts) - 1))], 2)}


def _matplotlib_subplots_grid(maps) -> None:
    """The slow way, for comparison: one matplotlib figure with a subplot per channel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 6), dpi=100)
    for i, m in enumerate(maps):
        ax = fig.add_subplot(4, 4, i + 1)
        ax.imshow(m, cmap="viridis")
        ax.set_title(f"ch {i}", fontsize=7)
        ax.axis("off")
    c = FigureCanvasAgg(fig)
    c.draw()
    c.buffer_rgba()


def bench_model(name: str, weights: str, repeats: int) -> dict:
    import torch

    from look_inside import activations as A
    from look_inside.views import activation_view, attribution_view, get_inspect_model, input_tensor, render_grid
    from zoo.registry import get_spec

    spec = get_spec(name)
    model = get_inspect_model(name, weights, 0)
    if spec.family == "digits":
        from training.data.datasets import mnist5k

        src = (mnist5k().test_x[0, 0].numpy() * 255).astype("uint8")
    else:
        import skimage.data

        src = skimage.data.chelsea()
    x = input_tensor(spec, src)
    layer = A.default_layer(model)

    def grid_only():  # the number: forward (capturing the layer) + rendering the grid
        cap = A.capture(model, x, keep=[layer], stats=False)
        render_grid(cap.acts[layer][0], 16, False)

    def grid_with_stats():  # what the tab does for the grid: also every layer's statistics in the same pass
        cap = A.capture(model, x, keep=[layer], stats=True)
        render_grid(cap.acts[layer][0], 16, False)

    cap = A.capture(model, x, keep=[layer])
    _, maps = A.top_channels(cap.acts[layer][0], 16)
    with torch.inference_mode():
        forward = _time(lambda: model(x), repeats)
    out = {
        "model": name, "weights": weights, "input": list(x.shape), "layer": layer,
        "layer_output": list(cap.acts[layer].shape),
        "plain_forward": forward,
        "forward_capture_plus_grid": _time(grid_only, repeats),
        "forward_capture_stats_plus_grid": _time(grid_with_stats, repeats),
        "grid_render_numpy": _time(lambda: render_grid(cap.acts[layer][0], 16, False), repeats),
        "grid_render_matplotlib_16_subplots": _time(lambda: _matplotlib_subplots_grid(maps), max(3, repeats // 3)),
        "full_activation_view_with_histograms": _time(lambda: activation_view(model, spec, x, layer),
                                                      max(3, repeats // 3)),
        "attribution_gradcam_saliency": _time(lambda: attribution_view(model, spec, x), max(3, repeats // 3)),
    }
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from core.device import describe_device

    load0 = [round(v, 2) for v in os.getloadavg()]
    t0 = time.perf_counter()
    digits = bench_model("resnet_digits", "trained", args.repeats)
    r18 = bench_model("resnet18", "random init", args.repeats)
    result = {
        "benchmark": "look inside: forward + activation grid, in process",
        "device": describe_device(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load0,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()], "python": platform.python_version(),
        "note": "ResNet-18 uses random-init weights (no ImageNet weights offline); the cost is the same.",
        "digits": digits, "resnet18_224": r18,
        "targets": {
            "digits_grid_ms": 150, "resnet18_grid_ms": 1000,
            "digits_ok": digits["forward_capture_stats_plus_grid"]["median_ms"] <= 150,
            "resnet18_ok": r18["forward_capture_stats_plus_grid"]["median_ms"] <= 1000,
        },
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
