#!/usr/bin/env python
"""A fine-tuning run exported from PyTorch Playground: one device, or DistributedDataParallel under torchrun.

    python train.py                                        # one device (CUDA if present, else CPU)
    torchrun --standalone --nproc_per_node=4 train.py      # 4 processes on this machine (DDP)
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 --rdzv_id=myrun train.py

The run's settings are config.json (next to this file); flags override them: --data DIR (an ImageFolder of
any size), --epochs, --max-steps, --batch-size, --out DIR, --resume CKPT. The schedule is the tab's: stage 1
trains a new head on a frozen backbone, stage 2 unfreezes and trains at a lower learning rate. The model
definition, the data sets, the augmentation, the optimizer/scheduler and the checkpoint format are the
Playground's own source, copied verbatim into playground_src/ when the run was exported.

Under torchrun every process trains on its 1/N of each global batch (DistributedSampler), DDP averages
the gradients, so N processes take the same optimizer steps as one process with the whole batch; the
learning rates are the tab's, for the global batch (they are not rescaled). Logs and files come from rank 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent


class RunError(Exception):
    """Bad input (config, data folder, checkpoint): printed as one clear line, exit status 2."""


# ------------------------------------------------------------------ settings

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(HERE / "config.json"), help="the run's settings (default: next to train.py)")
    p.add_argument("--data", help="an ImageFolder directory (DIR/<class>/<image>, or DIR/train + DIR/test); "
                                  "default: the run's own data set")
    p.add_argument("--epochs", help="epochs per stage: N (both stages) or N1,N2")
    p.add_argument("--max-steps", type=int, help="optimizer steps per stage, at most (a dry run: --max-steps 2)")
    p.add_argument("--batch-size", type=int, help="global batch (all processes together); default: the run's")
    p.add_argument("--eval-every", type=int, help="steps between test evaluations (0: once per epoch); the tab's "
                                                  "10 suits small test splits, not a large --data folder")
    p.add_argument("--out", default="out", help="output folder for model.safetensors, checkpoint.safetensors")
    p.add_argument("--resume", help="a checkpoint.safetensors of this model (from this script or the Fine-tune tab)")
    p.add_argument("--weights", help="starting weights (.safetensors) instead of the ones named in config.json")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers per process for --data")
    p.add_argument("--save-every", type=int, default=0, help="also write the checkpoint every N steps (0: per stage)")
    p.add_argument("--stop-after", type=int, help="stop after N steps in all (a time-limited job), like the tab's "
                                                  "Cancel: the checkpoint resumes where it stopped")
    return p.parse_args(argv)


def load_config(path: str) -> dict:
    if not os.path.isfile(path):
        raise RunError(f"config not found: {path}. train.py reads the run's settings from config.json (it comes "
                       f"in the exported zip, next to train.py); pass --config PATH if it is elsewhere.")
    try:
        with open(path) as f:
            cfg = json.load(f)
    except ValueError as exc:
        raise RunError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != "pytorch-playground-export" \
            or not {"run", "model", "data"} <= set(cfg):
        raise RunError(f"{path} is not a PyTorch Playground export config (needs format, run, model, data)")
    return cfg


def run_settings(cfg: dict, args) -> SimpleNamespace:
    """The tab's FinetuneConfig fields, with the command line's overrides."""
    run = dict(cfg["run"])
    if args.epochs:
        try:
            e = [int(v) for v in args.epochs.split(",")]
        except ValueError:
            raise RunError("--epochs takes N or N1,N2 (epochs of stage 1 and stage 2)") from None
        if len(e) not in (1, 2) or min(e) < 0 or sum(e) == 0:
            raise RunError("--epochs takes N or N1,N2, non-negative, not all 0")
        run["stage1_epochs"], run["stage2_epochs"] = (e[0], e[0]) if len(e) == 1 else e
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise RunError("--max-steps must be at least 1")
        run["max_steps"] = args.max_steps
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise RunError("--batch-size must be at least 1")
        run["batch_size"] = args.batch_size
    if args.eval_every is not None:
        if args.eval_every < 0:
            raise RunError("--eval-every must be 0 (once per epoch) or more")
        run["eval_every"] = args.eval_every
    if args.data:
        run["target"] = "zip"      # the tab's name for "an ImageFolder of my own"
    return SimpleNamespace(**run)


# ------------------------------------------------------------------ processes and devices

def setup(device_arg: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (RANK/WORLD_SIZE set) the process group comes from the
    environment: nccl on CUDA, gloo on CPU. Plain `python train.py` is one process and no group."""
    cuda = torch.cuda.is_available() if device_arg == "auto" else device_arg == "cuda"
    if cuda and not torch.cuda.is_available():
        raise RunError("--device cuda, but torch sees no CUDA device")
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        local = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if cuda else "gloo", device_id=device if cuda else None)
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, torch.device("cuda" if cuda else "cpu")


def log(rank: int, msg: str) -> None:
    if rank == 0:
        print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ model

def load_strict(model: nn.Module, state: dict, what: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise RunError(f"{what} does not fit this architecture: missing {missing[:3]}, unexpected {unexpected[:3]}, "
                       f"shapes {shapes[:2]}")
    model.load_state_dict(state, strict=True)


def start_weights(mcfg: dict, override: str | None) -> str:
    """The starting weights' file: --weights, the copy in the zip, or the Hub (huggingface_hub's cache)."""
    if override:
        return override
    w = mcfg["weights"]
    if w.get("file"):
        return str(HERE / w["file"])
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(w["hub_repo"], w["hub_file"], revision=w.get("revision", "main"))
    except Exception as exc:  # noqa: BLE001 - offline, no such repo, no network: one line, and the way out
        raise RunError(f"cannot get the starting weights {w['hub_repo']}/{w['hub_file']} from the Hugging Face Hub "
                       f"({type(exc).__name__}: {str(exc)[:200]}); download them once, or pass --weights "
                       f"FILE.safetensors") from None


def build_model(mcfg: dict, num_classes: int, seed: int, pretrained: bool, weights: str | None):
    """The zoo architecture with its starting weights (strict), and a new seeded head for the classes."""
    from safetensors.torch import load_file

    from playground_src import recipe

    if mcfg.get("torchvision"):
        import torchvision

        model = torchvision.models.get_model(mcfg["torchvision"], weights=None)
    else:
        from playground_src import digits

        model = getattr(digits, mcfg["architecture"])()
    if pretrained:
        path = start_weights(mcfg, weights)
        try:
            state = load_file(path)
        except Exception as exc:  # noqa: BLE001 - a missing/garbage file: say which
            raise RunError(f"cannot read starting weights {path}: {exc}") from None
        if mcfg.get("key_map"):
            state = getattr(recipe, mcfg["key_map"])(state)
        load_strict(model, state, f"starting weights {os.path.basename(path)}")
    parts = recipe.parts_of(model)
    recipe.replace_head(model, parts, num_classes, seed=seed)
    return model, parts


# ------------------------------------------------------------------ data

class Data:
    """Training and test images: tensors held in memory (the built-in sets), or an ImageFolder streamed
    through a DataLoader (--data: any size)."""

    def __init__(self, classes, train_x=None, train_y=None, test_x=None, test_y=None, train_ds=None, test_ds=None):
        self.classes = tuple(classes)
        self.train_x, self.train_y, self.test_x, self.test_y = train_x, train_y, test_x, test_y
        self.train_ds, self.test_ds = train_ds, test_ds

    @property
    def streamed(self) -> bool:
        return self.train_ds is not None

    def n_train(self) -> int:
        return len(self.train_ds) if self.streamed else len(self.train_x)


def builtin_data(run, input_size) -> Data:
    """The tab's data sets, the tab's split (training/finetuning/finetune.py: load_target)."""
    from playground_src import data as D
    from playground_src import recipe

    if run.target == "digits":
        split = D.digits()
    elif run.target == "mnist5k":
        split = D.mnist5k()
    elif run.target in D.ONLINE_SETS:
        try:
            split = D.online_dataset(run.target, max_items=run.online_max_items)
        except D.DatasetUnavailable as exc:
            raise RunError(str(exc)) from None
        n_test = max(10, run.online_max_items // 4)
        split = D.Split(split.train_x, split.train_y, split.test_x[:n_test], split.test_y[:n_test], split.classes)
    else:
        raise RunError("this run was trained on an uploaded ImageFolder zip: unzip it and pass --data DIR")
    split = recipe.few_shot(split, run.few_shot, run.seed)
    try:
        split = recipe.adapt_split(split, tuple(input_size))
    except ValueError as exc:
        raise RunError(f"{exc} (or pass --data DIR: a folder is streamed, not held in memory)") from None
    return Data(split.classes, split.train_x, split.train_y, split.test_x, split.test_y)


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def folder_data(root: str, input_size, run) -> Data:
    """An ImageFolder: DIR/train and DIR/test (or val) if present, else the tab's seeded 80/20 stratified
    split of DIR/<class>/<image>. Images are decoded, converted to the model's channels and resized in
    DataLoader workers."""
    from torchvision import datasets
    from torchvision.transforms import v2

    from playground_src import data as D

    c, h, w = input_size
    p = Path(root)
    if not p.is_dir():
        raise RunError(f"--data {root}: not a directory")
    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if len(subdirs) == 1 and not any(f.suffix.lower() in IMAGE_EXTS for f in subdirs[0].iterdir()):
        if not {"train", "test", "val"} & {subdirs[0].name}:
            return folder_data(str(subdirs[0]), input_size, run)   # a zip's single top folder
    mode = "L" if c == 1 else "RGB"
    tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Resize((h, w), antialias=True)])

    def loader(path):
        from PIL import Image

        with Image.open(path) as img:
            return img.convert(mode)

    def folder(d):
        try:
            return datasets.ImageFolder(str(d), transform=tf, loader=loader)
        except (FileNotFoundError, RuntimeError) as exc:
            raise RunError(f"--data {root} is not an ImageFolder ({exc}). Expected DIR/<class_name>/<image>.png "
                           f"(at least two class folders), or DIR/train/<class>/... and DIR/test/<class>/...") from None

    test_dir = next((p / n for n in ("test", "val") if (p / n).is_dir()), None)
    if (p / "train").is_dir() and test_dir is not None:
        train, test = folder(p / "train"), folder(test_dir)
        if train.classes != test.classes:
            raise RunError(f"{p / 'train'} and {test_dir} have different class folders")
    else:
        full = folder(p)
        y = torch.tensor(full.targets)
        if len(full.classes) < 2 or len(y) < 2 * len(full.classes):
            raise RunError(f"--data {root}: need at least two class folders and two images per class")
        tr, te = D.stratified_split(y, test_per_class=0.2)
        train, test = torch.utils.data.Subset(full, tr.tolist()), torch.utils.data.Subset(full, te.tolist())
        train.targets = y[tr].tolist()
        train.classes = full.classes
    if run.few_shot:
        raise RunError("few_shot picks images from in-memory sets; with --data, give a folder of the images you want")
    return Data(train.classes, train_ds=train, test_ds=test)


def loader_for(ds, indices, batch, workers, device, drop_last):
    return torch.utils.data.DataLoader(ds, batch_size=batch, sampler=indices, num_workers=workers,
                                       pin_memory=device.type == "cuda", drop_last=drop_last,
                                       persistent_workers=False)


# ------------------------------------------------------------------ evaluation and agreement

@torch.no_grad()
def evaluate(model, data: Data, mean, std, rank, world, device, workers) -> torch.Tensor:
    """Confusion matrix (true x predicted) of the whole test split, each process scoring every world-th image,
    summed over processes. Rank 0's BatchNorm statistics are broadcast first, so every process scores the model
    rank 0 saves (DDP syncs buffers at each training forward; the last one has moved them locally)."""
    from playground_src import recipe

    if world > 1:
        for b in model.buffers():
            dist.broadcast(b, 0)
    was = model.training
    model.eval()
    k = len(data.classes)
    cm = torch.zeros(k * k, dtype=torch.long, device=device)
    n = len(data.test_ds) if data.streamed else len(data.test_x)
    mine = list(range(rank, n, world))
    if data.streamed:
        batches = loader_for(data.test_ds, mine, 256, workers, device, drop_last=False)
    else:
        idx = torch.tensor(mine, dtype=torch.long)
        batches = ((data.test_x[idx[i:i + 500]], data.test_y[idx[i:i + 500]]) for i in range(0, len(idx), 500))
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        pred = model((x - mean) / std).argmax(1)
        cm += torch.bincount(y * k + pred, minlength=k * k)
    if world > 1:
        dist.all_reduce(cm)
    if was:
        recipe.set_train_mode(model)   # evaluation must not unfreeze a frozen BatchNorm's statistics
    return cm.view(k, k).cpu()


def accuracy(cm: torch.Tensor) -> float:
    return 100.0 * cm.diag().sum().item() / max(1, cm.sum().item())


def checksum(model: nn.Module) -> torch.Tensor:
    """Three numbers that change with any parameter: sum, sum of squares, and a position-weighted sum."""
    flat = torch.cat([p.detach().double().flatten().cpu() for p in model.parameters()])
    pos = torch.arange(1, len(flat) + 1, dtype=torch.float64) / len(flat)
    return torch.stack([flat.sum(), flat.pow(2).sum(), (flat * pos).sum()])


def ranks_agree(model: nn.Module, world: int, device) -> tuple[bool, list[float]]:
    """Every process checks its parameters against everyone's: all-reduce MAX of the checksum and of its
    negation gives max and min; they are equal only if all processes hold the same numbers."""
    c = checksum(model)
    if world == 1:
        return True, c.tolist()
    hi, lo = c.to(device).clone(), (-c).to(device)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MAX)
    return bool(torch.equal(hi.cpu(), -lo.cpu())) and bool(torch.equal(hi.cpu(), c)), c.tolist()


# ------------------------------------------------------------------ checkpoints

def epoch_order(sampler, epoch: int, n: int, world: int, device) -> torch.Tensor:
    """This epoch's global order, as the tab's checkpoint stores it (run/perm): global batch i is
    perm[i*B:(i+1)*B]. DistributedSampler deals perm[r::world] to rank r, so the ranks' lists interleave;
    the few images it drops to split evenly go at the end."""
    sampler.set_epoch(epoch)
    mine = torch.tensor(list(sampler), dtype=torch.long)
    if world > 1:
        parts = [torch.zeros_like(mine) for _ in range(world)]
        dist.all_gather(parts, mine)
        mine = torch.stack(parts, 1).flatten()
    rest = torch.ones(n, dtype=torch.bool)
    rest[mine] = False
    return torch.cat([mine, torch.nonzero(rest).flatten()])


def save_checkpoint(path: Path, weights: dict, train_state: dict, meta: dict) -> None:
    """The Fine-tune tab's resumable checkpoint (playground_src/checkpoint.py's pack), written atomically."""
    from safetensors.torch import save_file

    from playground_src.checkpoint import pack

    tensors, metadata = pack(weights, train_state, meta)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_checkpoint(path: str, cfg: dict, run_keys: set):
    from playground_src.checkpoint import CheckpointError, load_checkpoint

    try:
        ck = load_checkpoint(path)
    except CheckpointError as exc:
        raise RunError(f"--resume {path}: {exc}") from None
    m = ck.meta
    if m.get("model") != cfg["model"]["name"]:
        raise RunError(f"--resume {path}: a checkpoint of {m.get('model')!r}; this export trains "
                       f"{cfg['model']['name']!r} (export that run from the tab to resume it)")
    conf = m.get("config")
    if not isinstance(conf, dict) or set(conf) != run_keys or m.get("stage") not in (1, 2) \
            or not isinstance(m.get("classes"), list):
        raise RunError(f"--resume {path}: its config, stage or classes are not this export's fields")
    return ck


# ------------------------------------------------------------------ training

def train_stage(stage, model, parts, run, data, ctx, resume=None):
    """One stage of the tab's schedule under DDP; the loop is training/trainer.py's train(), with the batch
    split across processes. Returns (metrics, state for a checkpoint)."""
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DistributedSampler, TensorDataset

    from playground_src import recipe
    from playground_src.augment import mixup, random_affine

    rank, world, device = ctx.rank, ctx.world, ctx.device
    tc = recipe._stage_config(run, stage, ctx.mean_std[0], ctx.mean_std[1])
    if tc.batch_size % world:
        raise RunError(f"the global batch {tc.batch_size} does not split over {world} processes: pass "
                       f"--batch-size a multiple of {world}")
    per_rank = tc.batch_size // world
    torch.manual_seed(tc.seed + rank)                       # dropout: the tab's seed on rank 0, its own elsewhere
    gen = torch.Generator().manual_seed(tc.seed + 7919 * rank)   # augmentation: a different stream per rank
    n_trainable = recipe.freeze(model, recipe.trainable_paths(parts, stage, run.unfreeze))
    params = [p for p in model.parameters() if p.requires_grad]
    net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if world > 1 else model
    n = data.n_train()
    sampler = DistributedSampler(TensorDataset(torch.empty(n, 0)) if not data.streamed else data.train_ds,
                                 num_replicas=world, rank=rank, shuffle=True, seed=tc.seed, drop_last=True)
    steps_per_epoch = max(1, len(sampler) // per_rank)
    total = tc.epochs * steps_per_epoch if tc.max_steps is None else min(tc.epochs * steps_per_epoch, tc.max_steps)
    opt = recipe.make_optimizer(params, tc)
    sched = recipe.make_scheduler(opt, tc, total)
    amp = recipe.autocast_context(device, tc.amp)
    scaler = torch.amp.GradScaler(device.type) if tc.amp == "fp16" else None
    transform = None
    if run.augment == "data-tab":
        from playground_src.transforms import AugmentSettings, batch_transform

        transform = batch_transform(AugmentSettings.from_dict(run.augment_settings), ctx.input_size[-1])
    mean, std = ctx.norm
    num_classes = len(data.classes)
    if not data.streamed:
        xtr, ytr = data.train_x.to(device), data.train_y.to(device)
    step, start_epoch, start_i, perm, best_acc, best_state = 0, 0, 0, None, None, None
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        step, start_epoch, start_i = int(resume["step"]), int(resume["epoch"]), int(resume["batch_in_epoch"])
        total = int(resume["total_steps"])
        if rank == 0:
            gen.set_state(resume["generator"])
            torch.set_rng_state(resume["torch_rng"])
        perm, best_acc = resume.get("perm"), resume.get("best_acc")
    recipe.set_train_mode(model)
    t0, eval_s, last_eval, loss, stopped = time.perf_counter(), 0.0, None, None, False
    pos = (start_epoch, start_i)
    for epoch in range(start_epoch, tc.epochs):
        if step >= total or stopped:
            break
        if epoch == start_epoch and perm is not None and len(perm) == n:   # resume inside this epoch's order
            mine = perm[:len(sampler) * world][rank::world]
        else:
            perm = None
            sampler.set_epoch(epoch)
            mine = torch.tensor(list(sampler), dtype=torch.long)
        first = start_i if epoch == start_epoch else 0
        mine = mine[first * per_rank:(steps_per_epoch) * per_rank]
        if data.streamed:
            batches = loader_for(data.train_ds, mine.tolist(), per_rank, ctx.workers, device, drop_last=True)
        else:
            batches = ((xtr[mine[j:j + per_rank].to(device)], ytr[mine[j:j + per_rank].to(device)])
                       for j in range(0, len(mine) - per_rank + 1, per_rank))
        for i, (xb, yb) in enumerate(batches, start=first):
            if step >= total:
                break
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if tc.augment:
                xb = random_affine(xb, generator=gen)
            if transform is not None:
                xb = transform(xb)
            if tc.mixup > 0:
                xb, yb = mixup(xb, yb, tc.mixup, num_classes, gen)
            xb = (xb - mean) / std
            if tc.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with amp:
                loss = F.cross_entropy(net(xb), yb, label_smoothing=tc.label_smoothing)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()       # DDP all-reduces (averages) the gradients here
                opt.step()
            sched.step()
            step += 1
            pos = (epoch, i + 1)
            if (tc.eval_every and step % tc.eval_every == 0) or step == total \
                    or (not tc.eval_every and i == steps_per_epoch - 1):
                te = time.perf_counter()
                acc = accuracy(evaluate(model, data, mean, std, rank, world, device, ctx.workers))
                eval_s += time.perf_counter() - te
                last_eval = (step, acc)
                if tc.keep_best and (best_acc is None or acc > best_acc):
                    best_acc, best_state = acc, {k: v.detach().clone() for k, v in model.state_dict().items()}
                log(rank, f"stage {stage} step {step}/{total} loss {loss.item():.4f} test acc {acc:.2f}%")
            ctx.steps_done += 1
            if ctx.stop_after is not None and ctx.steps_done >= ctx.stop_after:
                stopped = True
                break
            if ctx.save_every and step % ctx.save_every == 0 and step < total:
                ctx.save(stage, model, opt, sched, gen, sampler, perm, step, (epoch, i + 1), steps_per_epoch,
                         total, best_acc, None)
    seconds = time.perf_counter() - t0
    final = last_eval[1] if last_eval is not None and last_eval[0] == step else \
        accuracy(evaluate(model, data, mean, std, rank, world, device, ctx.workers))
    last_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    state = ctx.train_state(opt, sched, gen, sampler, perm, step, pos, steps_per_epoch, total, best_acc)
    restored = False
    if tc.keep_best and best_state is not None and best_acc > final:
        model.load_state_dict(best_state)
        final, restored = best_acc, True
    freeze_note = f"{n_trainable:,} trainable parameters"
    return ({"stage": stage, "steps": step, "test_acc": final, "seconds": seconds, "train_seconds": seconds - eval_s,
             "images": (step - (resume or {}).get("step", 0)) * tc.batch_size, "restored_best": restored,
             "stopped": stopped, "trainable": freeze_note}, last_state, state)


class Context:
    """What every stage shares: process, device, normalisation, and rank 0's checkpoint writer."""

    def __init__(self, rank, world, device, input_size, mean, std, workers, out, meta, save_every):
        self.rank, self.world, self.device, self.input_size = rank, world, device, input_size
        m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.norm = (m, s)
        self.mean_std = (mean[0], std[0]) if len(mean) == 1 else (tuple(mean), tuple(std))
        self.workers, self.out, self.meta, self.save_every = workers, out, meta, save_every
        self.stop_after, self.steps_done = None, 0

    def train_state(self, opt, sched, gen, sampler, used_perm, step, pos, steps_per_epoch, total, best_acc) -> dict:
        """The trainer's state_out: where a resume continues (a collective: every rank calls it)."""
        epoch, i = pos
        perm = None
        if i >= steps_per_epoch:
            epoch, i = epoch + 1, 0
        elif used_perm is not None:       # this epoch ran in a resumed checkpoint's order
            perm = used_perm
        else:
            perm = epoch_order(sampler, epoch, len(sampler.dataset), self.world, self.device)
        return dict(optimizer=opt.state_dict(), scheduler=sched.state_dict(), step=step, epoch=epoch,
                    batch_in_epoch=i, generator=gen.get_state(), torch_rng=torch.get_rng_state(), perm=perm,
                    best_acc=best_acc, total_steps=total)

    def save(self, stage, model, opt, sched, gen, sampler, used_perm, step, pos, steps_per_epoch, total, best_acc, acc):
        state = self.train_state(opt, sched, gen, sampler, used_perm, step, pos, steps_per_epoch, total, best_acc)
        if self.rank == 0:
            self.write_checkpoint(stage, model.state_dict(), state, acc)

    def write_checkpoint(self, stage, weights, state, acc) -> Path:
        path = self.out / "checkpoint.safetensors"
        save_checkpoint(path, weights, state, dict(self.meta, stage=stage, test_acc=acc))
        return path


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config)
    run = run_settings(cfg, args)
    mcfg = cfg["model"]
    input_size = tuple(mcfg["input_size"])
    rank, world, device = setup(args.device)
    try:
        resume = read_checkpoint(args.resume, cfg, set(cfg["run"])) if args.resume else None
        if resume is not None:
            run = SimpleNamespace(**resume.meta["config"])
            if args.data:
                run.target = "zip"
        data = folder_data(args.data, input_size, run) if args.data else builtin_data(run, input_size)
        if resume is not None and list(data.classes) != list(resume.meta["classes"]):
            raise RunError(f"the checkpoint's classes {resume.meta['classes'][:10]} are not this data's "
                           f"{list(data.classes)[:10]}")
        torch.manual_seed(run.seed)
        model, parts = build_model(mcfg, len(data.classes), run.seed, pretrained=resume is None,
                                   weights=args.weights)
        if resume is not None:
            load_strict(model, resume.model_state, f"--resume {args.resume}")
        model.to(device)
        if run.amp == "fp16" and device.type != "cuda":
            raise RunError("fp16 mixed precision needs CUDA; on CPU set amp to bf16 or off in config.json")
        out = Path(args.out)
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        meta = {"config": dict(vars(run)), "classes": list(data.classes), "model": mcfg["name"],
                "input_size": list(input_size)}
        ctx = Context(rank, world, device, input_size, mcfg["mean"], mcfg["std"],
                      args.workers if data.streamed else 0, out, meta, args.save_every)
        if args.stop_after is not None:
            if args.stop_after < 1:
                raise RunError("--stop-after must be at least 1")
            ctx.stop_after = args.stop_after
        log(rank, f"{mcfg['name']} -> {len(data.classes)} classes, {data.n_train():,} training images "
                  f"({'streamed by a DataLoader' if data.streamed else 'in memory'}); {world} process(es) on "
                  f"{device.type} ({dist.get_backend() if world > 1 else 'no process group'}); global batch "
                  f"{run.batch_size} = {world} x {run.batch_size // max(1, world)} per process; learning rates "
                  f"{run.stage1_lr} (stage 1, head) and {run.stage2_lr} (stage 2), for the global batch")
        t0 = time.perf_counter()
        start_stage = int(resume.meta["stage"]) if resume is not None else 1
        stages, best, last = [], None, None
        for stage in (1, 2):
            epochs = run.stage1_epochs if stage == 1 else run.stage2_epochs
            if stage < start_stage or epochs == 0:
                continue
            m, last_state, state = train_stage(stage, model, parts, run, data, ctx,
                                               resume=resume.train_state if resume is not None and stage == start_stage
                                               else None)
            stages.append(m)
            last = (stage, last_state, state)
            if rank == 0:
                ctx.write_checkpoint(stage, last_state, state, m["test_acc"])
            # the tab keeps the best across stages: a stage 2 that ends worse gives stage 1's weights back
            if best is None or m["test_acc"] >= best[0]:
                best = (m["test_acc"], {k: v.detach().clone() for k, v in model.state_dict().items()})
            else:
                model.load_state_dict(best[1])
            if m["stopped"]:
                break
        from playground_src import recipe

        recipe.freeze(model, None)
        cm = evaluate(model, data, ctx.norm[0], ctx.norm[1], rank, world, device, ctx.workers)
        acc = accuracy(cm)
        agree, csum = ranks_agree(model, world, device)
        if not agree:
            raise SystemExit(f"rank {rank}: parameters differ from the other processes' (checksum {csum}): "
                             f"DDP lost synchronisation; not trusting this run")
        seconds = time.perf_counter() - t0
        images = sum(s["images"] for s in stages)
        train_s = sum(s["train_seconds"] for s in stages)
        result = {"world_size": world, "steps": sum(s["steps"] for s in stages), "test_accuracy": round(acc, 4),
                  "seconds": round(seconds, 3), "images_per_second": round(images / max(train_s, 1e-9), 1),
                  "train_seconds": round(train_s, 3), "stopped": any(s["stopped"] for s in stages),
                  "ranks_agree": agree, "param_checksum": csum,
                  "backend": dist.get_backend() if world > 1 else None, "device": device.type,
                  "global_batch": run.batch_size, "per_process_batch": run.batch_size // world,
                  "stages": stages, "out": str(out.resolve())}
        if rank == 0:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                      str(out / "model.safetensors"),
                      metadata={"model": mcfg["name"], "classes": ",".join(data.classes), "test_acc": f"{acc:.2f}"})
            if last is not None:
                ctx.write_checkpoint(last[0], last[1], last[2], acc)
            (out / "metrics.json").write_text(json.dumps(dict(result, confusion=cm.tolist(),
                                                              classes=list(data.classes)), indent=2))
            print(json.dumps(result), flush=True)
        return 0
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    try:
        code = main()
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, after destroy_process_group: leave without the interpreter's teardown. There, torch's
        # gloo backend sometimes destroys a thread still running (about 1 run in 10 on a 2-core machine:
        # "terminate called without an active exception", SIGABRT), and torchrun then fails the whole job although
        # every file was written. Everything this process wrote is closed; only the streams need flushing.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
