"""The tutorial's fine-tuning schedule (chapter 4.3) for any zoo model, as pure functions.

Stage 1: freeze the pretrained backbone, replace the classifier's last Linear with a new head sized for
the target classes, train only the head. Stage 2: unfreeze all (or only the last blocks) and train on at
a lower learning rate. `parts_of(model)` knows, for every zoo architecture, which module is the head and
which are the blocks (input -> output), so "last N blocks" means the same thing for ResNet and VGG.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import torch
import torch.nn as nn

from training.data import Split
from training.trainer import StepInfo, TrainConfig, predict_all, train

TARGETS = ("digits", "mnist5k", "zip", "MNIST", "FashionMNIST", "CIFAR-10")
UNFREEZE = ("all", "last1", "last2", "none")
AUGMENT = ("none", "affine", "data-tab")
MAX_DATA_BYTES = 800_000_000       # float32 images held in memory for one run (a shared server)
FAMILIES = ("digits", "imagenet")  # the zoo's classifiers (other families, e.g. generative models, have no head)


def finetunable_models() -> list[str]:
    from zoo import list_models

    return [n for f in FAMILIES for n in list_models(f)]


@dataclass
class FinetuneConfig:
    """One fine-tuning run. The defaults are the offline run of the API: < 1 min on a laptop CPU."""

    model: str = "resnet_digits"
    target: str = "digits"            # see TARGETS; "zip" needs an ImageFolder zip
    few_shot: int = 0                 # training images per class (0 = all)
    stage1_epochs: int = 2            # head only, backbone frozen
    stage1_lr: float = 3e-3
    stage2_epochs: int = 2            # unfrozen part, lower lr
    stage2_lr: float = 5e-4
    unfreeze: str = "all"             # "all" | "last1" | "last2" | "none" (stage 2 trains what)
    optimizer: str = "adamw"
    batch_size: int = 64
    amp: str = "off"                  # "off" | "bf16" | "fp16" (CUDA)
    augment: str = "affine"           # "none" | "affine" (batched random affine) | "data-tab" (v2 pipeline)
    augment_settings: dict = field(default_factory=dict)   # AugmentSettings fields for "data-tab"
    eval_every: int = 10              # steps between test evaluations (live accuracy curve, keep-best)
    max_steps: int | None = None      # per stage (tests)
    online_max_items: int = 2000      # training images taken from an online torchvision set
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        if not isinstance(d, dict):
            raise ValueError("config must be an object")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        return validate(cls(**d))


def validate(c: FinetuneConfig) -> FinetuneConfig:
    def need(cond, msg):
        if not cond:
            raise ValueError(msg)

    def is_int(v, lo, hi):
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    def is_num(v, lo, hi):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi

    need(isinstance(c.model, str) and c.model in finetunable_models(),
         f"unknown model {c.model!r}; fine-tunable: {finetunable_models()}")
    need(c.target in TARGETS, f"target must be one of {TARGETS}")
    need(is_int(c.few_shot, 0, 10_000), "few_shot must be 0..10000 images per class")
    need(is_int(c.stage1_epochs, 0, 200) and is_int(c.stage2_epochs, 0, 200), "epochs must be 0..200 per stage")
    need(c.stage1_epochs + c.stage2_epochs > 0, "at least one epoch in one of the stages")
    need(is_num(c.stage1_lr, 1e-7, 1.0) and is_num(c.stage2_lr, 1e-7, 1.0), "learning rates must be in 1e-7..1")
    need(c.unfreeze in UNFREEZE, f"unfreeze must be one of {UNFREEZE}")
    need(c.optimizer in ("adamw", "adam", "sgd"), "optimizer must be adamw, adam or sgd")
    need(is_int(c.batch_size, 1, 1024), "batch size must be 1..1024")
    need(c.amp in ("off", "bf16", "fp16"), "mixed precision must be off, bf16 or fp16")
    need(c.augment in AUGMENT, f"augment must be one of {AUGMENT}")
    need(isinstance(c.augment_settings, dict), "augment_settings must be an object")
    need(is_int(c.eval_every, 0, 100_000), "eval_every must be a non-negative integer")
    need(c.max_steps is None or is_int(c.max_steps, 1, 10_000_000), "max_steps must be a positive integer")
    need(is_int(c.online_max_items, 10, 60_000), "online_max_items must be 10..60000")
    need(is_int(c.seed, 0, 2**31 - 1), "seed must be a non-negative integer")
    if c.augment == "data-tab":
        from training.transforms import AugmentSettings

        AugmentSettings.from_dict(c.augment_settings)
    return c


# What the Fine-tune tab's controls allow. A public server applies them to every run, from the tab, the API or a
# resumed checkpoint (whose JSON could otherwise ask for 200+200 epochs at batch size 1 and run for hours).
PUBLIC_LIMITS = {"stage1_epochs": (0, 20), "stage2_epochs": (0, 20), "batch_size": (8, 256), "few_shot": (0, 200),
                 "eval_every": (2, 10_000), "online_max_items": (10, 2000)}


def validate_public(c: FinetuneConfig) -> FinetuneConfig:
    """validate(c), then the tab's own limits (PUBLIC_LIMITS)."""
    validate(c)
    for name, (lo, hi) in PUBLIC_LIMITS.items():
        v = getattr(c, name)
        if not lo <= v <= hi:
            raise ValueError(f"{name} is {v}; this server allows {lo}..{hi} (the Fine-tune tab's limits)")
    return c


def check_resumable(meta: dict, position: dict) -> None:
    """A checkpoint whose run already ended has nothing left to train: say so instead of a 0-step 'done'."""
    from training.checkpoint import CheckpointError

    cfg = meta.get("config") or {}
    last_stage = 2 if cfg.get("stage2_epochs", 0) > 0 else 1
    if meta.get("stage") == last_stage and position.get("step", 0) >= position.get("total_steps", 1):
        acc = meta.get("test_acc")
        raise CheckpointError(f"this checkpoint's run had already finished (stage {last_stage}, step "
                              f"{position.get('step')} of {position.get('total_steps')}"
                              + (f", test accuracy {acc:.2f}%" if isinstance(acc, (int, float)) else "")
                              + "): there is nothing left to train. Start a new run with more epochs instead.")


# ---------------------------------------------------------------- architecture parts

@dataclass
class Parts:
    """Where the head and the blocks of a network are, by module path."""

    head: str                         # the last nn.Linear: replaced by a new one for the target classes
    blocks: list[list[str]]           # groups of module paths, input -> output, excluding the head


def _get(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


def _set(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(_get(model, parent) if parent else model, name, new)


def parts_of(model: nn.Module) -> Parts:
    """Head and blocks for the zoo's two designs.

    ResNet (ours and torchvision's): head `fc`; blocks = stem (conv1, bn1), layer1, layer2, ...
    AlexNet/VGG (ours and torchvision's): head = last Linear of `classifier`; blocks = the conv stages of
    `features` (split after each max-pool), then the classifier's earlier layers as the last block.
    """
    if isinstance(getattr(model, "fc", None), nn.Linear) and hasattr(model, "layer1"):
        layers = [n for n in ("layer1", "layer2", "layer3", "layer4") if hasattr(model, n)]
        return Parts("fc", [["conv1", "bn1"]] + [[n] for n in layers])
    feats, clf = getattr(model, "features", None), getattr(model, "classifier", None)
    if isinstance(feats, nn.Sequential) and isinstance(clf, nn.Sequential):
        lin = [i for i, m in enumerate(clf) if isinstance(m, nn.Linear)]
        if not lin:
            raise ValueError("classifier has no Linear layer to replace")
        blocks, cur = [], []
        for i, m in enumerate(feats):
            cur.append(f"features.{i}")
            if isinstance(m, nn.MaxPool2d):
                blocks.append(cur)
                cur = []
        if cur:
            blocks.append(cur)
        pre = [f"classifier.{i}" for i in range(lin[-1]) if list(clf[i].parameters())]
        if pre:
            blocks.append(pre)
        return Parts(f"classifier.{lin[-1]}", blocks)
    raise ValueError(f"do not know the head/blocks of {type(model).__name__}")


def replace_head(model: nn.Module, parts: Parts, num_classes: int, seed: int = 0) -> nn.Module:
    """A new, seeded nn.Linear(in_features, num_classes) in place of the old head."""
    old = _get(model, parts.head)
    g = torch.Generator().manual_seed(seed)
    new = nn.Linear(old.in_features, num_classes)
    with torch.no_grad():
        bound = 1.0 / old.in_features ** 0.5  # nn.Linear's default init, drawn from our generator
        new.weight.uniform_(-bound, bound, generator=g)
        new.bias.uniform_(-bound, bound, generator=g)
    _set(model, parts.head, new.to(old.weight.device))
    return model


def trainable_paths(parts: Parts, stage: int, unfreeze: str) -> list[str] | None:
    """Module paths that train in a stage; None = everything."""
    if stage == 1 or unfreeze == "none":
        return [parts.head]
    if unfreeze == "all":
        return None
    n = int(unfreeze[-1])
    return [p for block in parts.blocks[-n:] for p in block] + [parts.head]


def freeze(model: nn.Module, paths: list[str] | None) -> int:
    """requires_grad only for parameters under `paths` (None = all); returns the trainable count."""
    for p in model.parameters():
        p.requires_grad_(paths is None)
    if paths is not None:
        for path in paths:
            for p in _get(model, path).parameters():
                p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------- data

def adapt_split(split: Split, input_size: tuple[int, int, int]) -> Split:
    """Resize images and match channels (1 -> 3 by repeating, 3 -> 1 by luminance) to a model's input."""
    import torch.nn.functional as F

    c, h, w = input_size
    n = len(split.train_x) + len(split.test_x)
    if n * c * h * w * 4 > MAX_DATA_BYTES:
        raise ValueError(f"{n} images at {c}x{h}x{w} need {n * c * h * w * 4 / 1e9:.1f} GB: use a few-shot subset "
                         f"or a smaller data set")

    def conv(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
        if x.shape[1] == 1 and c == 3:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] == 3 and c == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return x.contiguous()

    if split.train_x.shape[1:] == (c, h, w) and split.test_x.shape[1:] == (c, h, w):
        return split
    return Split(conv(split.train_x), split.train_y, conv(split.test_x), split.test_y, split.classes)


def few_shot(split: Split, k: int, seed: int = 0) -> Split:
    """Keep k training images per class (seeded); the test split is untouched."""
    if not k:
        return split
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(split.train_y).tolist():
        idx = torch.nonzero(split.train_y == c).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    idx = torch.cat(keep)
    idx = idx[torch.randperm(len(idx), generator=g)]
    return Split(split.train_x[idx], split.train_y[idx], split.test_x, split.test_y, split.classes)


def load_target(cfg: FinetuneConfig, zip_path: str | None = None, progress=None) -> Split:
    """The target data set for cfg, at the model's input size, few-shot applied. progress(done, total, text) is
    called while a zip is decoded (it may raise to cancel)."""
    from training import data as D
    from zoo import get_spec

    c, h, w = get_spec(cfg.model).weights.input_size
    if cfg.target == "digits":
        split = D.digits()
    elif cfg.target == "mnist5k":
        split = D.mnist5k()
    elif cfg.target == "zip":
        if not zip_path:
            raise ValueError("target 'zip' needs an ImageFolder zip (class folders of images)")
        from training.zipdata import load_zip_dataset

        return few_shot(load_zip_dataset(zip_path, size=(h, w), channels=c, progress=progress), cfg.few_shot,
                        cfg.seed)
    else:
        split = D.online_dataset(cfg.target, max_items=cfg.online_max_items)
        n_test = max(10, cfg.online_max_items // 4)
        split = Split(split.train_x, split.train_y, split.test_x[:n_test], split.test_y[:n_test], split.classes)
    split = few_shot(split, cfg.few_shot, cfg.seed)
    return adapt_split(split, (c, h, w))


# ---------------------------------------------------------------- runs

@dataclass
class FinetuneResult:
    """Everything the tab shows after a run, and what a checkpoint needs."""

    model: nn.Module
    config: FinetuneConfig
    classes: tuple[str, ...]
    test_acc: float
    per_class: list[float]
    confusion: list[list[int]]        # rows: true class, columns: predicted
    preds: torch.Tensor               # predicted class of every test image
    history: list[dict]               # {"stage", "step", "loss", "test_acc", "seconds"}
    stages: list[dict]
    seconds: float
    device: str
    stopped: bool
    stage: int                        # the stage the train_state belongs to
    train_state: dict
    scratch: dict | None = None


def _stage_config(cfg: FinetuneConfig, stage: int, mean, std) -> TrainConfig:
    return TrainConfig(
        epochs=cfg.stage1_epochs if stage == 1 else cfg.stage2_epochs,
        lr=cfg.stage1_lr if stage == 1 else cfg.stage2_lr,
        batch_size=cfg.batch_size, optimizer=cfg.optimizer, augment=cfg.augment == "affine",
        max_steps=cfg.max_steps, seed=cfg.seed + stage, eval_every=cfg.eval_every, mean=mean, std=std,
        amp=cfg.amp, keep_best=True)


def _norm(spec):
    m, s = spec.weights.mean, spec.weights.std
    return (m[0], s[0]) if len(m) == 1 else (tuple(m), tuple(s))


def _transform(cfg: FinetuneConfig, size: int):
    if cfg.augment != "data-tab":
        return None
    from training.transforms import AugmentSettings, batch_transform

    return batch_transform(AugmentSettings.from_dict(cfg.augment_settings), size)


def confusion_matrix(y: torch.Tensor, pred: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def build_model(cfg: FinetuneConfig, num_classes: int, pretrained: bool = True) -> tuple[nn.Module, Parts]:
    from zoo import get_model

    model = get_model(cfg.model, weights="default" if pretrained else None)
    parts = parts_of(model)
    replace_head(model, parts, num_classes, seed=cfg.seed)
    return model, parts


def run_finetune(cfg: FinetuneConfig, data: Split, on_step: Callable[[int, StepInfo], bool | None] | None = None,
                 stop: threading.Event | None = None, device=None, resume=None) -> FinetuneResult:
    """Stage 1 (head) then stage 2 (unfrozen part, lower lr). Cancel via `stop` or on_step returning False:
    the run stops after the step in flight and keeps the best weights seen so far.

    resume: a training.checkpoint.Checkpoint of this config; its stage continues exactly where it stopped.
    """
    from zoo.device import get_device

    device = torch.device(device) if device is not None else get_device()
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):   # a checkpoint's RNG state and our seeds stay inside this run
        return _run_finetune(cfg, data, on_step, stop, device, resume)


def _run_finetune(cfg, data, on_step, stop, device, resume) -> FinetuneResult:
    from zoo import get_spec

    validate(cfg)
    spec = get_spec(cfg.model)
    mean, std = _norm(spec)
    k = len(data.classes)
    model, parts = build_model(cfg, k, pretrained=resume is None)
    start_stage, resume_state = 1, None
    if resume is not None:
        from training.checkpoint import check_fits

        start_stage = int(resume.meta.get("stage", 1))
        resume_state = resume.train_state
        freeze(model, trainable_paths(parts, start_stage, cfg.unfreeze))
        params = [p for p in model.parameters() if p.requires_grad]
        check_fits(resume, model, params, n_train=len(data.train_x))
    transform = _transform(cfg, data.train_x.shape[-1])
    history, stages = [], []
    t0 = time.perf_counter()
    stopped, best = False, (None, None)
    state: dict = {}
    trained_stage = start_stage       # the stage train_state belongs to (a skipped stage 2 leaves it at 1)
    for stage in (1, 2):
        epochs = cfg.stage1_epochs if stage == 1 else cfg.stage2_epochs
        if stage < start_stage or epochs == 0:
            continue
        trained_stage = stage
        n_train = freeze(model, trainable_paths(parts, stage, cfg.unfreeze))

        def hook(info: StepInfo, stage=stage) -> bool:
            history.append({"stage": stage, "step": info.step, "loss": info.loss, "test_acc": info.test_acc,
                            "seconds": time.perf_counter() - t0})
            if on_step is not None and on_step(stage, info) is False:
                return False
            return not (stop is not None and stop.is_set())

        state = {}
        m = train(model, data, _stage_config(cfg, stage, mean, std), on_step=hook, device=device,
                  transform=transform, resume=resume_state if stage == start_stage else None, state_out=state)
        stages.append({"stage": stage, "trainable_params": n_train, "test_acc": m["test_acc"], "steps": m["steps"],
                       "seconds": m["seconds"], "stopped": m["stopped"], "restored_best": m["restored_best"]})
        # best across stages: a stage 2 that ends worse than stage 1 gives stage 1's weights back
        if best[0] is None or m["test_acc"] >= best[0]:
            best = (m["test_acc"], {k_: v.detach().clone() for k_, v in model.state_dict().items()})
        else:
            model.load_state_dict(best[1])
        if m["stopped"]:
            stopped = True
            break
    freeze(model, None)
    model.eval()
    preds = predict_all(model, data.test_x, mean, std)
    cm = confusion_matrix(data.test_y.cpu(), preds, k)
    support = cm.sum(1).clamp(min=1)
    per_class = (100.0 * cm.diag() / support).tolist()
    acc = 100.0 * cm.diag().sum().item() / max(1, len(preds))
    return FinetuneResult(model=model.cpu(), config=cfg, classes=tuple(data.classes), test_acc=acc,
                          per_class=per_class, confusion=cm.tolist(), preds=preds, history=history, stages=stages,
                          seconds=time.perf_counter() - t0, device=str(device), stopped=stopped, stage=trained_stage,
                          train_state=state)


def run_scratch(cfg: FinetuneConfig, data: Split, steps: int, stop: threading.Event | None = None,
                device=None, on_step: Callable[[int, StepInfo], None] | None = None) -> dict:
    """The same architecture from random weights, every parameter trained, for the same number of steps.
    on_step(1, info) after every step draws its curve beside the fine-tune's."""
    from zoo import get_spec

    spec = get_spec(cfg.model)
    mean, std = _norm(spec)
    with torch.random.fork_rng(devices=[]):      # the seed is this run's, not the process's
        torch.manual_seed(cfg.seed)
        model, _ = build_model(cfg, len(data.classes), pretrained=False)
    tc = _stage_config(cfg, 1, mean, std)
    tc.epochs = max(1, cfg.stage1_epochs + cfg.stage2_epochs) * 4  # enough epochs; max_steps sets the budget
    tc.max_steps = max(1, steps)

    def hook(info: StepInfo) -> bool:
        if on_step is not None:
            on_step(1, info)
        return not (stop is not None and stop.is_set())

    m = train(model, data, tc, device=device, transform=_transform(cfg, data.train_x.shape[-1]), on_step=hook)
    return {"test_acc": m["test_acc"], "steps": m["steps"], "seconds": m["seconds"], "stopped": m["stopped"],
            "history": m["history"]}


def checkpoint_meta(res: FinetuneResult) -> dict:
    from zoo import get_spec

    return {"config": res.config.to_dict(), "stage": res.stage, "classes": list(res.classes),
            "model": res.config.model, "input_size": list(get_spec(res.config.model).weights.input_size),
            "test_acc": res.test_acc}


def save_result_checkpoint(res: FinetuneResult, path: str) -> str:
    """Resumable checkpoint of a run: the weights at the resume position + optimizer/scheduler/RNG + config."""
    from training.checkpoint import save_checkpoint

    st = dict(res.train_state)
    weights = st.pop("model", None) or res.model.state_dict()
    return save_checkpoint(path, weights, st, checkpoint_meta(res))


@dataclass
class SavedRun:
    """A finished run as the tab keeps it per session: small facts and the paths of its files on disk (weights,
    test thumbnails + predictions). The model and predictions are read from there only when asked for, so
    session state holds no large tensors."""

    config: FinetuneConfig
    classes: tuple[str, ...]
    test_acc: float
    weights_path: str
    gallery_path: str

    @property
    def model(self) -> nn.Module:
        from safetensors.torch import load_file

        from zoo.hub import load_state_strict

        model, _ = build_model(self.config, len(self.classes), pretrained=False)
        load_state_strict(model, load_file(self.weights_path))
        return model.eval()

    @property
    def preds(self) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(self.gallery_path, framework="pt") as f:
            return f.get_tensor("pred")


def config_from_checkpoint(ckpt) -> FinetuneConfig:
    return config_from_header(ckpt.meta)


def config_from_header(meta: dict) -> FinetuneConfig:
    """The run's config from a checkpoint's metadata, held to the tab's limits (validate_public)."""
    from training.checkpoint import CheckpointError

    try:
        cfg = validate_public(FinetuneConfig.from_dict(meta.get("config")))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"refused checkpoint: its config is invalid ({exc})") from None
    stage = meta.get("stage")
    classes = meta.get("classes")
    if stage not in (1, 2) or not isinstance(classes, list) or not 2 <= len(classes) <= 10_000 \
            or not all(isinstance(c, str) and len(c) < 200 for c in classes):
        raise CheckpointError("refused checkpoint: stage must be 1 or 2 and classes a list of names")
    return cfg


def finetune_code(cfg: FinetuneConfig) -> str:
    """Plain PyTorch for the schedule this config runs."""
    from zoo import get_spec

    spec = get_spec(cfg.model)
    model = spec.builder()
    parts = parts_of(model)
    stage2 = trainable_paths(parts, 2, cfg.unfreeze)
    opt = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}[cfg.optimizer]
    unfreeze = ("for p in model.parameters():\n    p.requires_grad = True" if stage2 is None else
                "for name in " + repr(stage2) + ":\n    for p in model.get_submodule(name).parameters():\n"
                "        p.requires_grad = True")
    amp = {"off": "", "bf16": "torch.autocast(device.type, dtype=torch.bfloat16)",
           "fp16": "torch.autocast('cuda', dtype=torch.float16)  # + torch.amp.GradScaler"}[cfg.amp]
    fwd = (f"with {amp}:\n            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)" if amp else
           "loss = F.cross_entropy(model(x), y, label_smoothing=0.1)")
    return f'''import torch
import torch.nn as nn
import torch.nn.functional as F
from zoo import get_model      # {spec.title}: {spec.weights.source}

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = get_model("{cfg.model}")               # pretrained weights, loaded strictly from safetensors
# Stage 1: freeze the backbone, new head for the target classes
for p in model.parameters():
    p.requires_grad = False
old = model.get_submodule("{parts.head}")
model.{_attr_code(parts.head)} = nn.Linear(old.in_features, num_classes)   # new head: trainable
model.to(device)

def fit(epochs, lr):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.{opt}(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * len(train_loader))
    for epoch in range(epochs):
        model.train()
        for m in model.modules():        # a frozen BatchNorm keeps its running statistics too
            if isinstance(m, nn.BatchNorm2d) and not m.weight.requires_grad:
                m.eval()
        for x, y in train_loader:        # x normalised with mean {spec.weights.mean}, std {spec.weights.std}
            x, y = x.to(device), y.to(device)
            {fwd}
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()

fit(epochs={cfg.stage1_epochs}, lr={cfg.stage1_lr})
# Stage 2: unfreeze ({cfg.unfreeze}) and continue at a lower learning rate
{unfreeze}
fit(epochs={cfg.stage2_epochs}, lr={cfg.stage2_lr})

from safetensors.torch import save_file        # weights as safetensors, not a pickle
save_file(model.state_dict(), "finetuned.safetensors")
'''


def _attr_code(path: str) -> str:
    """'classifier.6' -> 'classifier[6]' (valid Python for assignment)."""
    out = []
    for part in path.split("."):
        out.append(f"[{part}]" if part.isdigit() else ("." + part if out else part))
    return "".join(out)
