"""Model compression on the digits zoo: int8 quantization, bf16, magnitude and channel pruning, and the
safetensors format that stores any of them; knowledge distillation; autocast (mixed precision) training.

Which int8 path runs, and why. In torch 2.14 `torch.ao.quantization` is deprecated (its successor is
torchao) but it still runs, and it is the only path here that quantizes *convolutions* for the CPU:
torchao 0.18's `quantize_` imports with this torch but only swaps nn.Linear weights, and its PT2E flow
only gets faster once lowered by torch.compile/inductor. So:

* "int8 static (FX)": `torch.ao.quantization.quantize_fx.prepare_fx` -> calibrate on train images ->
  `convert_fx`, x86 (fbgemm/oneDNN) engine: conv+BN+ReLU are fused, weights int8 per channel,
  activations uint8 per tensor, so convs run as int8 kernels.
* "int8 dynamic (Linear)": `torch.ao.quantization.quantize_dynamic` on nn.Linear only (weights int8,
  activations quantized on the fly); convs stay fp32.

The safetensors format that stores any of these models, and loading it back, is in
training/compressed_io.py (its names are re-exported here).
"""
from __future__ import annotations

import copy
import math
import threading
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from training.compressed_io import (FORMAT, flatten_state, layer_shapes, load_compressed,  # noqa: F401 (re-exported)
                                    rebuild_from_shapes, save_compressed, skeleton, unflatten_state)
from training.trainer import autocast_context

QUANT_ENGINE = "x86"
TECHNIQUES = ("fp32", "int8-static-fx", "int8-dynamic-linear", "bf16", "magnitude-pruned", "channel-pruned",
              "channel-pruned+int8-static-fx", "student")
PATHS = {
    "fp32": "nn.Module as shipped (fp32)",
    "int8-static-fx": "torch.ao.quantization.quantize_fx prepare_fx/convert_fx, x86 engine, calibrated "
                      "(deprecated API, still the one that runs int8 convs on CPU in torch 2.14)",
    "int8-dynamic-linear": "torch.ao.quantization.quantize_dynamic({nn.Linear}, dtype=torch.qint8)",
    "bf16": "model.to(torch.bfloat16)",
    "magnitude-pruned": "torch.nn.utils.prune.global_unstructured(L1Unstructured) + prune.remove",
    "channel-pruned": "L1-norm filter pruning: smaller Conv2d/BatchNorm2d/Linear rebuilt",
}


@contextmanager
def _quiet():
    """torch.ao.quantization warns that it is deprecated on every call; we say so once, in the UI."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


# ----------------------------------------------------------------------------------------- quantization
def quantize_static_fx(model: nn.Module, calib_x: torch.Tensor | None, batch_size: int = 128) -> nn.Module:
    """Post-training static int8 (FX graph mode). calib_x: normalised images; None = uncalibrated skeleton."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = QUANT_ENGINE
    model = copy.deepcopy(model).cpu().eval()
    example = (torch.zeros(1, 1, 28, 28),)
    with _quiet():
        prepared = prepare_fx(model, get_default_qconfig_mapping(QUANT_ENGINE), example)
        with torch.inference_mode():
            if calib_x is None:
                prepared(example[0])
            else:
                for i in range(0, len(calib_x), batch_size):
                    prepared(calib_x[i:i + batch_size])   # observers record activation ranges
        return convert_fx(prepared)


def quantize_dynamic_linear(model: nn.Module) -> nn.Module:
    """Dynamic int8 for nn.Linear layers only."""
    torch.backends.quantized.engine = QUANT_ENGINE
    with _quiet():
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear},
                                                      dtype=torch.qint8)


# -------------------------------------------------------------------------------------------- pruning
def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def magnitude_prune(model: nn.Module, sparsity: float) -> nn.Module:
    """Zero the `sparsity` fraction of conv/linear weights with the smallest |w|, over the whole model."""
    import torch.nn.utils.prune as prune

    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    model = copy.deepcopy(model).cpu().eval()
    params = prunable(model)
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(sparsity))
    for m, name in params:
        prune.remove(m, name)          # make it permanent: weight_orig * mask -> weight
    return model


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the conv/linear weights."""
    ws = [m.weight for m, _ in prunable(model)]
    return sum((w == 0).sum().item() for w in ws) / sum(w.numel() for w in ws)


def _keep(weight: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices of the output channels with the largest L1 norm (Li et al. 2017, 'Pruning Filters for
    Efficient ConvNets'), in their original order."""
    n = weight.shape[0]
    k = max(1, int(round(n * ratio)))
    return weight.detach().abs().flatten(1).sum(1).topk(k).indices.sort().values


def _conv_like(conv: nn.Conv2d, out_idx=None, in_idx=None) -> nn.Conv2d:
    w = conv.weight.detach()
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None:
        w = w[:, in_idx]
    new = nn.Conv2d(w.shape[1], w.shape[0], conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    bias=conv.bias is not None)
    new.weight.data.copy_(w)
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.detach() if out_idx is None else conv.bias.detach()[out_idx])
    return new


def _bn_like(bn: nn.BatchNorm2d, idx) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), eps=bn.eps, momentum=bn.momentum)
    for name in ("weight", "bias"):
        getattr(new, name).data.copy_(getattr(bn, name).detach()[idx])
    new.running_mean.copy_(bn.running_mean[idx])
    new.running_var.copy_(bn.running_var[idx])
    new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)   # a fresh module starts in train mode: keep the old one's mode


def _prune_sequential(model: nn.Module, ratio: float) -> None:
    """VGG/AlexNet: every conv in `features` loses channels; its BN, the next conv's inputs and the first
    Linear's input columns (channel-major after flatten) follow."""
    feats = model.features
    orig_channels = [m for m in feats if isinstance(m, nn.Conv2d)][-1].out_channels
    convs = [i for i, m in enumerate(feats) if isinstance(m, nn.Conv2d)]
    prev = None
    for i in convs:
        conv = feats[i]
        idx = _keep(conv.weight, ratio)
        feats[i] = _conv_like(conv, out_idx=idx, in_idx=prev)
        for j in range(i + 1, len(feats)):            # the BN right after it (before the next conv)
            if isinstance(feats[j], nn.Conv2d):
                break
            if isinstance(feats[j], nn.BatchNorm2d):
                feats[j] = _bn_like(feats[j], idx)
        prev = idx
    fc_i, fc = next((i, m) for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear))
    spatial = fc.in_features // orig_channels          # e.g. 3*3 positions per channel after flatten
    cols = (prev[:, None] * spatial + torch.arange(spatial)[None, :]).flatten()
    new = nn.Linear(len(cols), fc.out_features, bias=fc.bias is not None)
    new.weight.data.copy_(fc.weight.detach()[:, cols])
    if fc.bias is not None:
        new.bias.data.copy_(fc.bias.detach())
    model.classifier[fc_i] = new


def _prune_resnet(model: nn.Module, ratio: float) -> None:
    """ResNet: inside each BasicBlock, conv1's outputs (and bn1, conv2's inputs) are pruned; block outputs
    are tied together by the identity shortcuts, so they keep their width."""
    for block in model.modules():
        if hasattr(block, "conv1") and hasattr(block, "conv2") and hasattr(block, "bn1") and block is not model:
            idx = _keep(block.conv1.weight, ratio)
            block.conv1 = _conv_like(block.conv1, out_idx=idx)
            block.bn1 = _bn_like(block.bn1, idx)
            block.conv2 = _conv_like(block.conv2, in_idx=idx)


def channel_prune(model: nn.Module, keep_ratio: float) -> nn.Module:
    """Structured pruning that really removes channels: returns a smaller dense model (fewer params, less
    compute). keep_ratio = fraction of channels kept in each pruned conv."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    model = copy.deepcopy(model).cpu().eval()
    if hasattr(model, "features") and hasattr(model, "classifier"):
        _prune_sequential(model, keep_ratio)
    elif hasattr(model, "layer1"):
        _prune_resnet(model, keep_ratio)
    else:
        raise ValueError(f"channel pruning knows VGG/AlexNet-style (features+classifier) and ResNet models, "
                         f"not {type(model).__name__}")
    return model.eval()


# ------------------------------------------------------------------------------------- distillation
class StudentCNN(nn.Module):
    """A small student: three conv-BN-ReLU-pool stages (16-32-64) and one linear layer. ~29k params,
    about a tenth of ResNetDigits'."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        layers, cin = [], 1
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = w
        self.features = nn.Sequential(*layers)            # (B, 64, 3, 3)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * 9, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        return self.classifier(self.features(x))          # (B, 10)


class AveragedTeacher(nn.Module):
    """Several teachers as one: log of their mean class probabilities (Hinton et al. 2015 distil an
    ensemble into one small model). Its outputs are log-probabilities, so they work as logits: softmax
    gives back the ensemble's average, and dividing by T softens it like any teacher's logits."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an averaged teacher needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(x).float().softmax(1) for m in self.members]).mean(0)
        return probs.clamp_min(1e-12).log()


ZOO_AVERAGE = "zoo_average"                 # a teacher name: the zoo's three digits architectures, averaged
ZOO_AVERAGE_MEMBERS = ("resnet_digits", "vgg_digits", "alexnet_digits")


def teacher_names() -> list[str]:
    from zoo.registry import list_models

    return list_models("digits") + [ZOO_AVERAGE]


def check_teacher(name: str) -> str:
    """name, if it names a teacher (teacher_names()); else a ValueError that lists them."""
    if name not in teacher_names():
        raise ValueError(f"teacher must be one of {teacher_names()}")
    return name


def teacher_model(name: str) -> nn.Module:
    """A digits zoo model, or ZOO_AVERAGE: the average of ZOO_AVERAGE_MEMBERS' probabilities (eval mode, CPU)."""
    from zoo.registry import get_model

    if check_teacher(name) == ZOO_AVERAGE:
        return AveragedTeacher([get_model(m).cpu().eval() for m in ZOO_AVERAGE_MEMBERS]).eval()
    return get_model(name).cpu().eval()


def distill_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Hinton et al. 2015: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels).
    The T^2 keeps the soft term's gradients the same size as T changes."""
    import torch.nn.functional as F

    ce = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    if alpha <= 0:
        return ce
    kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                  F.log_softmax(teacher_logits / temperature, dim=1), reduction="batchmean", log_target=True)
    return alpha * temperature ** 2 * kl + (1 - alpha) * ce


def soft_target_top_prob(logits: torch.Tensor, temperature: float) -> float:
    """Mean top probability of softmax(logits / T): 1 = one-hot targets, 1/classes = uniform ones."""
    return float((logits.float() / temperature).softmax(1).max(1).values.mean())


def distill_loss_fn(teacher: nn.Module, temperature: float, alpha: float, label_smoothing: float = 0.0):
    """The trainer's loss_fn hook for distillation: the teacher (eval mode, no grad) labels the very batch
    the student sees, augmentation included ("consistent" teaching, Beyer et al. 2022)."""
    teacher.eval()

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t_logits = teacher(inputs)
        return distill_loss(logits.float(), t_logits.float(), labels, temperature, alpha, label_smoothing)

    return loss_fn


def train_student(student: nn.Module, data, cfg, teacher: nn.Module | None = None, temperature: float = 4.0,
                  alpha: float = 0.9, amp: str | None = None, device: torch.device | None = None,
                  on_step=None) -> dict:
    """training.trainer.train with the distillation loss (AdamW + OneCycle, random affine, same seed).

    teacher=None or alpha=0 trains the same student alone with the same loop and cross-entropy, so the two
    differ only in the loss. amp: None keeps cfg.amp; else 'off' | 'bf16' | 'fp16' autocast."""
    from dataclasses import replace

    from training.trainer import train
    from zoo.device import get_device

    device = torch.device(device) if device is not None else get_device()
    if amp is not None:
        cfg = replace(cfg, amp=amp)
    loss_fn = None
    if teacher is not None and alpha > 0:
        teacher = copy.deepcopy(teacher).to(device)     # the zoo's cached model stays as it is
        if cfg.channels_last:
            teacher.to(memory_format=torch.channels_last)
        loss_fn = distill_loss_fn(teacher, temperature, alpha, cfg.label_smoothing)
    m = train(student, data, cfg, device=device, loss_fn=loss_fn, on_step=on_step)
    return {"test_acc": m["test_acc"], "steps": m["steps"], "seconds": m["seconds"],
            "final_loss": sum(h["loss"] for h in m["history"][-10:]) / max(1, len(m["history"][-10:])),
            "amp": cfg.amp, "device": m["device"]}


# --------------------------------------------------------------------------------- the whole lab
@dataclass
class LabConfig:
    """One compression comparison. Defaults: a fast offline run (short fine-tuning and distillation)."""

    base: str = "vgg_digits"
    sparsity: float = 0.5                 # magnitude pruning: fraction of conv/linear weights zeroed
    keep_ratio: float = 0.5               # channel pruning: fraction of channels kept per conv
    finetune_steps: int = 20              # after channel pruning (0 = none)
    finetune_distill: bool = True         # fine-tune the pruned model against the unpruned one's soft targets
    teacher: str = "resnet_digits"
    distill_steps: int = 40               # for the distilled student and the same student alone (0 = skip)
    temperature: float = 1.0              # chosen on held-out train images for the default student (bench:
                                          # --select-temperature 1,2,4); at T=4 the zoo teacher's targets are
                                          # nearly uniform (its training used label smoothing)
    alpha: float = 0.9
    mixup: float = 0.0                    # mixup of the distilled student's batches (the teacher sees them too)
    alone_mixup: float = 0.0              # mixup of the student alone's batches (mixed hard labels)
    student_widths: tuple[int, int, int] = (16, 32, 64)   # StudentCNN's three conv widths
    calib_images: int = 256               # train images that calibrate int8 activation ranges
    latency_batch: int = 1
    repeats: int = 20
    seed: int = 0


_lab_cache: dict[tuple, object] = {}
_lab_lock = threading.Lock()


def _cached(key: tuple, make):
    with _lab_lock:
        if key not in _lab_cache:
            _lab_cache[key] = make()
        return _lab_cache[key]


def _short_cfg(steps: int, n_train: int, batch: int = 64, lr: float = 2e-3, seed: int = 0):
    from training.trainer import TrainConfig

    return TrainConfig(epochs=max(1, math.ceil(steps / max(1, n_train // batch))), batch_size=batch, lr=lr,
                       max_steps=steps, seed=seed)


def _steps(progress, text: str):
    """An on_step for train() that reports 'text: step i/n' through progress (None: no reporting)."""
    if progress is None:
        return None
    return lambda info: progress(info.step, info.total_steps, f"{text}: step {info.step}/{info.total_steps}")


def finetuned_channel_pruned(base_model: nn.Module, cfg: LabConfig, data, progress=None) -> nn.Module:
    """Channel-pruned copy of the base, fine-tuned for cfg.finetune_steps (cached per process).

    With cfg.finetune_distill the pruned model learns from the unpruned one's soft targets (T, alpha of the
    lab) as well as the labels: the usual way to recover what pruning cost (e.g. Hinton 2015; Polino 2018)."""
    from training.data import Split
    from training.trainer import train

    def make():
        m = channel_prune(base_model, cfg.keep_ratio)
        if cfg.finetune_steps > 0:
            no_test = Split(data.train_x, data.train_y, data.test_x[:0], data.test_y[:0], data.classes)
            tcfg = _short_cfg(cfg.finetune_steps, len(data.train_x), lr=1e-3, seed=cfg.seed)
            loss_fn = (distill_loss_fn(copy.deepcopy(base_model).cpu(), cfg.temperature, cfg.alpha,
                                       tcfg.label_smoothing) if cfg.finetune_distill else None)
            train(m, no_test, tcfg, device=torch.device("cpu"), loss_fn=loss_fn,
                  on_step=_steps(progress, "fine-tuning the channel-pruned model"))
        return m.cpu().eval()

    key = ("pruned", cfg.base, cfg.keep_ratio, cfg.finetune_steps, cfg.finetune_distill, cfg.seed)
    if cfg.finetune_distill:
        key += (cfg.temperature, cfg.alpha)
    return _cached(key, make)


def students(cfg: LabConfig, data, progress=None) -> tuple[nn.Module, nn.Module, dict, dict]:
    """(distilled student, same student alone, their metrics), trained once per process per setting."""
    from dataclasses import replace

    def make():
        tc = _short_cfg(cfg.distill_steps, len(data.train_x), seed=cfg.seed)
        torch.manual_seed(cfg.seed)
        distilled = StudentCNN(widths=tuple(cfg.student_widths))
        alone = copy.deepcopy(distilled)          # the same initial weights
        m1 = train_student(distilled, data, replace(tc, mixup=cfg.mixup), teacher_model(cfg.teacher),
                           cfg.temperature, cfg.alpha, on_step=_steps(progress, "distilling the student"))
        m2 = train_student(alone, data, replace(tc, mixup=cfg.alone_mixup), None,
                           on_step=_steps(progress, "training the same student alone"))
        return distilled.cpu().eval(), alone.cpu().eval(), m1, m2

    return _cached(("students", cfg.teacher, cfg.distill_steps, cfg.temperature, cfg.alpha, cfg.mixup,
                    cfg.alone_mixup, cfg.seed, tuple(cfg.student_widths)), make)


def autocast_step_times(steps: int = 5, batch: int = 64, amp: str = "bf16") -> dict:
    """ms per training step of StudentCNN in fp32 vs under autocast (mixed precision training)."""
    import time

    import torch.nn.functional as F

    from zoo.device import get_device

    dev = get_device()
    x = torch.randn(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    out = {}
    for mode in ("off", amp):
        torch.manual_seed(0)
        m = StudentCNN().to(dev).train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler(dev.type, enabled=(mode == "fp16"))
        times = []
        for i in range(steps + 2):                 # two warm-up steps
            t0 = time.perf_counter()
            with autocast_context(dev, mode):
                loss = F.cross_entropy(m(x).float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1000)
        out[mode] = {"ms_per_step": sorted(times)[len(times) // 2], "loss": float(loss.detach())}
    out["device"] = str(dev)
    return out


def run_lab(cfg: LabConfig | None = None, data=None, out_dir: str | None = None, progress=None) -> dict:
    """Baseline and every technique, measured alike; compressed models written as safetensors to out_dir.
    progress(done, total, text) reports each stage (and training steps); it may raise to cancel the lab.

    Returns {"rows": [dict per technique], "files": {technique: path}, "autocast": {...}, "notes": [...]}."""
    import os
    import tempfile

    from training.data import mnist5k
    from training.measure import accuracy, compare_latency, count_params, model_bytes, prepare_input
    from zoo.registry import get_model, list_models

    cfg = cfg or LabConfig()
    data = data or mnist5k()
    if cfg.base not in list_models("digits"):
        raise ValueError(f"base must be one of {list_models('digits')}")
    out_dir = out_dir or tempfile.mkdtemp(prefix="playground-compress-")
    stages = ["quantizing (int8 static, int8 dynamic, bf16)", "magnitude pruning", "channel pruning",
              "distilling the students", "measuring latency", "measuring accuracy and writing files"]

    def stage(i: int) -> None:
        if progress is not None:
            progress(i, len(stages), stages[i])

    stage(0)
    base = get_model(cfg.base).cpu().eval()
    calib = prepare_input(data.train_x[:cfg.calib_images])
    models: dict[str, tuple[nn.Module, torch.dtype, str, dict | None, str]] = {}   # name -> model, dtype, tech, shapes, base
    models["baseline fp32"] = (base, torch.float32, "fp32", None, cfg.base)
    models["int8 static (FX)"] = (quantize_static_fx(base, calib), torch.float32, "int8-static-fx", None, cfg.base)
    models["int8 dynamic (Linear only)"] = (quantize_dynamic_linear(base), torch.float32, "int8-dynamic-linear",
                                            None, cfg.base)
    models["bf16 weights+activations"] = (copy.deepcopy(base).to(torch.bfloat16), torch.bfloat16, "bf16", None,
                                          cfg.base)
    stage(1)
    models[f"magnitude pruned {cfg.sparsity:.0%}"] = (magnitude_prune(base, cfg.sparsity), torch.float32,
                                                      "magnitude-pruned", None, cfg.base)
    stage(2)
    pruned = finetuned_channel_pruned(base, cfg, data, progress)
    shapes = layer_shapes(pruned)
    label = f"channel pruned keep {cfg.keep_ratio:.0%}" + (
        f" + {cfg.finetune_steps} ft steps{' (KD)' if cfg.finetune_distill else ''}" if cfg.finetune_steps else "")
    models[label] = (pruned, torch.float32, "channel-pruned", shapes, cfg.base)
    models[label + " + int8"] = (quantize_static_fx(pruned, calib), torch.float32, "channel-pruned+int8-static-fx",
                                 shapes, cfg.base)
    extra = {}
    teacher = teacher_model(cfg.teacher) if cfg.distill_steps > 0 else None
    stage(3)
    if cfg.distill_steps > 0:
        distilled, alone, m1, m2 = students(cfg, data, progress)
        if cfg.teacher != cfg.base:
            models[f"teacher {cfg.teacher}"] = (teacher, torch.float32, "fp32", None, cfg.teacher)
        mix = f", mixup {cfg.mixup:g}" if cfg.mixup else ""
        models[f"student distilled (T={cfg.temperature:g}, alpha={cfg.alpha:g}{mix})"] = (
            distilled, torch.float32, "student", layer_shapes(distilled), "student")
        models["same student alone" + (f" (mixup {cfg.alone_mixup:g})" if cfg.alone_mixup else "")] = (
            alone, torch.float32, "student", layer_shapes(alone), "student")
        extra = {"distilled": m1, "alone": m2}
    stage(4)
    lat = compare_latency({k: (m, dt) for k, (m, dt, *_) in models.items()}, batch=cfg.latency_batch,
                          repeats=cfg.repeats)
    stage(5)
    rows, files = [], {}
    b_size = model_bytes(base)
    b_acc = None
    for name, (m, dt, tech, shp, bname) in models.items():
        acc = accuracy(m, data.test_x, data.test_y, dt)
        if b_acc is None:
            b_acc = acc
        size = model_bytes(m)
        nz = sum(int((p != 0).sum()) for p in m.parameters()) if any(True for _ in m.parameters()) else None
        path = " -> ".join(PATHS.get(t, t) for t in tech.replace("+int8-static-fx", "+int8-static-fx").split("+"))
        if tech == "student":
            path = f"StudentCNN trained {cfg.distill_steps} steps with train_student (KD loss, Hinton et al. 2015)"
        rows.append({"technique": name, "path": path, "params": count_params(m),
                     "nonzero": nz, "size_kb": round(size / 1024, 1), "smaller_x": round(b_size / size, 2),
                     "latency_ms": round(lat[name], 3), "faster_x": round(lat["baseline fp32"] / lat[name], 2),
                     "accuracy": round(acc, 2), "acc_change": round(acc - b_acc, 2)})
        if tech != "fp32":
            fname = "".join(c if c.isalnum() else "_" for c in f"{bname}_{name}")[:80] + ".safetensors"
            files[name] = save_compressed(m, os.path.join(out_dir, fname), bname, tech, shp)
    notes = ["Latency: median of interleaved repeats on this CPU, batch "
             f"{cfg.latency_batch}, 1 thread, denormals flushed for every model alike."]
    if cfg.distill_steps > 0:
        from training.measure import predict_logits

        with torch.no_grad():
            top = soft_target_top_prob(predict_logits(teacher, data.train_x[:256]), cfg.temperature)
        from zoo.hub import read_manifest

        note = (f"The teacher's soft targets at T={cfg.temperature:g}: mean top probability {top:.2f} "
                f"on 256 train digits (1 = one-hot, 0.1 = uniform).")
        names = ZOO_AVERAGE_MEMBERS if cfg.teacher == ZOO_AVERAGE else (cfg.teacher,)
        smoothing = max(read_manifest().get(n, {}).get("config", {}).get("label_smoothing") or 0 for n in names)
        if smoothing:
            who = f"{cfg.teacher} was" if len(names) == 1 else "The averaged teacher's members were"
            note += (f" {who} trained with label smoothing {smoothing:g}, which squeezes logits together, "
                     "so a high T makes the targets nearly uniform (Muller et al. 2019).")
        notes.append(note)
    return {"rows": rows, "files": files, "extra": extra, "notes": notes, "config": asdict(cfg)}
