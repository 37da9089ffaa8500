"""Scale on paper: what decides DDP scaling of the exported run, measured here, and images/s projected for 1-64 GPUs.

    python -m bench.bench_scale                           # about 1 minute on 2 CPU cores
    python -m bench.bench_scale --out bench/results/scale.json

Measured on this machine (the Fine-tune tab's default run: resnet_digits, 28x28, per-process batch 64):
  * compute per step: FLOPs per image (torch.utils.flop_counter, forward + backward), aten operations per
    training step (forward, backward, AdamW: each is at least one kernel launch on a GPU), and the CPU's
    milliseconds per step (1 and 2 threads);
  * gradient bytes all-reduced per step: the trainable parameters of each stage in fp32; DDP's 25 MB buckets
    hold all of them in one, which is ready only when backward ends, so nothing overlaps with compute;
  * a gloo all-reduce of that many bytes between 2 processes on this machine;
  * data-loader throughput: PNG images/s through the exported script's own ImageFolder pipeline
    (train.py: folder_data) with 0, 1 and 2 workers.

Projection (weak scaling: every GPU keeps a batch of 64, the global batch is 64 N):
  step time = compute + all-reduce (no overlap, see above); images/s = 64 N / step time.
  GPU compute is not measured here (no GPU): compute = ops x LAUNCH_US + FLOPs / GPU_TFLOPS (assumed, flags).
  All-reduce: ring, 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x hop latency; within a node of 8 GPUs
  (NVLink-class) NVLINK_GBS and NVLINK_HOP_US, across nodes (one 200 Gb/s NIC per GPU) NET_GBS and NET_HOP_US.
  A second column: N machines like this one (the measured CPU step, the faster of 1 and 2 threads) on 10 Gb/s
  Ethernet. Loader workers per GPU: the PNG pipeline's best measured images/s per worker process, against
  the projected images/s per GPU (the in-memory data sets need none).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

NS = (1, 2, 4, 8, 16, 32, 64)


def _model():
    from training.finetuning.finetune import build_model
    from training.finetuning.finetune_config import FinetuneConfig

    model, parts = build_model(FinetuneConfig(), 10)
    return model.train(), parts


def flops_per_image(batch: int = 64) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model, _ = _model()
    x = torch.rand(batch, 1, 28, 28)
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(batch, dtype=torch.long)).backward()
    return fc.get_total_flops() / batch


def ops_per_step(batch: int = 64) -> int:
    """aten operations in one training step (forward, loss, backward, AdamW step), counted at dispatch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    model, _ = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 1, 28, 28), torch.zeros(batch, dtype=torch.long)
    for _ in range(2):   # the second step: the optimizer's state exists
        Count.n = 0
        with Count():
            loss = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return Count.n


def cpu_step_ms(batch: int, threads: int, steps: int = 12) -> float:
    torch.set_num_threads(threads)
    model, _ = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def _allreduce_worker(rank: int, world: int, nbytes: int, init: str, q) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    t = torch.ones(nbytes // 4)
    times = []
    for i in range(25):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        if i >= 5:
            times.append(time.perf_counter() - t0)
    if rank == 0:
        q.put(1000 * statistics.median(times))
    dist.destroy_process_group()


def gloo_allreduce_ms(nbytes: int) -> float:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        init = f"file://{tmp}/store"
        procs = [ctx.Process(target=_allreduce_worker, args=(r, 2, nbytes, init, q)) for r in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        return q.get()


def loader_images_per_s(workers_list=(0, 1, 2), n: int = 768) -> dict:
    """PNG digits through the exported train.py's folder_data + DataLoader (the --data path)."""
    from PIL import Image

    from training.data.datasets import digits
    from training.finetuning.export import build_export
    from training.finetuning.finetune_config import FinetuneConfig

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        z = build_export(FinetuneConfig(), tmp)
        with zipfile.ZipFile(z) as zf:
            zf.extractall(tmp)
        folder = next(p for p in Path(tmp).iterdir() if p.is_dir())
        split = digits()
        root = Path(tmp) / "imgs"
        for i in range(n):
            d = root / str(int(split.train_y[i]))
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray((split.train_x[i, 0] * 255).byte().numpy()).save(d / f"{i}.png")
        sys.path.insert(0, str(folder))
        try:
            import train  # the exported script (its playground_src/ is next to it)

            from types import SimpleNamespace

            data = train.folder_data(str(root), (1, 28, 28), SimpleNamespace(few_shot=0))
            for w in workers_list:
                loader = train.loader_for(data.train_ds, list(range(len(data.train_ds))), 64, w,
                                          torch.device("cpu"), drop_last=True)
                t0 = time.perf_counter()
                count = sum(len(x) for x, _ in loader)
                out[str(w)] = round(count / (time.perf_counter() - t0), 1)
        finally:
            sys.path.remove(str(folder))
            sys.modules.pop("train", None)
            for k in [k for k in sys.modules if k.startswith("playground_src")]:
                sys.modules.pop(k)
    return out


def ring_ms(nbytes: int, n: int, gbs: float, hop_us: float) -> float:
    if n == 1:
        return 0.0
    return 1000 * (2 * (n - 1) / n * nbytes / (gbs * 1e9)) + 2 * (n - 1) * hop_us / 1000


def project(m: dict, a) -> list[dict]:
    b = a.batch
    flops = m["flops_per_image"] * b
    gpu_ms = m["ops_per_step"] * a.launch_us / 1000 + 1000 * flops / (a.gpu_tflops * 1e12)
    nbytes = m["grad_bytes"]["stage2"]
    # a machine like this one: the faster of 1 and 2 threads as measured (on a busy machine 2 OpenMP threads
    # can be far slower than 1: their barriers wait for a core)
    cpu_ms = min(m["cpu_step_ms"][f"b{b}_t1"], m["cpu_step_ms"][f"b{b}_t2"])
    per_worker = max(v / max(int(w), 1) for w, v in m["loader_images_per_s"].items())
    rows = []
    for n in NS:
        inter = n > a.gpus_per_node
        ar = ring_ms(nbytes, n, a.net_gbs if inter else a.nvlink_gbs, a.net_hop_us if inter else a.nvlink_hop_us)
        step = gpu_ms + ar
        cpu_ar = ring_ms(nbytes, n, a.eth_gbs, a.eth_hop_us)
        cpu_step = cpu_ms + cpu_ar
        rows.append({"gpus": n, "global_batch": b * n, "gpu_compute_ms": round(gpu_ms, 3),
                     "allreduce_ms": round(ar, 3), "gpu_images_per_s": round(b * n / step * 1000),
                     "scaling_efficiency": round(gpu_ms / step, 3),
                     "loader_workers_per_gpu": round(b / step * 1000 / per_worker, 1),
                     "cpu_nodes_images_per_s": round(b * n / cpu_step * 1000),
                     "cpu_nodes_efficiency": round(cpu_ms / cpu_step, 3)})
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64, help="per-GPU batch (weak scaling)")
    ap.add_argument("--launch-us", type=float, default=10.0, help="assumed GPU cost per aten op (eager launch)")
    ap.add_argument("--gpu-tflops", type=float, default=50.0, help="assumed achieved GPU math rate (TF32/bf16)")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--nvlink-gbs", type=float, default=150.0, help="assumed all-reduce bus bandwidth in a node")
    ap.add_argument("--nvlink-hop-us", type=float, default=2.0)
    ap.add_argument("--net-gbs", type=float, default=25.0, help="assumed per-GPU bandwidth across nodes (200 Gb/s)")
    ap.add_argument("--net-hop-us", type=float, default=8.0)
    ap.add_argument("--eth-gbs", type=float, default=1.25, help="CPU nodes: 10 Gb/s Ethernet")
    ap.add_argument("--eth-hop-us", type=float, default=50.0)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    model, parts = _model()
    from training.finetuning.transfer import freeze, trainable_paths

    grad = {}
    for stage in (1, 2):
        grad[f"stage{stage}"] = 4 * freeze(model, trainable_paths(parts, stage, "all"))
    threads = torch.get_num_threads()
    m = {"flops_per_image": flops_per_image(a.batch), "ops_per_step": ops_per_step(a.batch), "grad_bytes": grad,
         "ddp_buckets": 1,
         "cpu_step_ms": {f"b{b}_t{t}": round(cpu_step_ms(b, t), 2) for b in (32, a.batch) for t in (1, 2)}}
    torch.set_num_threads(threads)
    m["gloo_allreduce_ms_2_processes_here"] = round(gloo_allreduce_ms(grad["stage2"]), 3)
    m["loader_images_per_s"] = loader_images_per_s()
    # a check of the model against what was measured: 2 processes here, 1 thread each, 32 images per process
    m["predicted_2_processes_here_images_per_s"] = round(
        64 / (m["cpu_step_ms"]["b32_t1"] + m["gloo_allreduce_ms_2_processes_here"]) * 1000)
    result = {"bench": "scale", "torch": torch.__version__, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg()[0], "measured": m,
              "assumptions": {k: v for k, v in vars(a).items() if k != "out"}, "projection": project(m, a)}
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
