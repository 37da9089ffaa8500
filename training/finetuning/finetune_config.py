"""What one fine-tuning run is: FinetuneConfig, its validation (and the public server's limits), and the checks
on a checkpoint's header before a run resumes from it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from training.checkpoint import CheckpointError
from training.data.transforms import AugmentSettings
from zoo import list_models

TARGETS = ("digits", "mnist5k", "zip", "MNIST", "FashionMNIST", "CIFAR-10")
UNFREEZE = ("all", "last1", "last2", "none")
AUGMENT = ("none", "affine", "data-tab")
FAMILIES = ("digits", "imagenet")  # the zoo's classifiers (other families, e.g. generative models, have no head)


def finetunable_models() -> list[str]:
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
    need(is_num(c.stage1_lr, 1e-7, 1.0) and is_num(c.stage2_lr, 1e-7, 1.0),
         "the learning rates must be between 1e-7 and 1")
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
    cfg = meta.get("config") or {}
    last_stage = 2 if cfg.get("stage2_epochs", 0) > 0 else 1
    if meta.get("stage") == last_stage and position.get("step", 0) >= position.get("total_steps", 1):
        acc = meta.get("test_acc")
        raise CheckpointError(f"this checkpoint's run had already finished (stage {last_stage}, step "
                              f"{position.get('step')} of {position.get('total_steps')}"
                              + (f", test accuracy {acc:.2f}%" if isinstance(acc, (int, float)) else "")
                              + "): there is nothing left to train. Start a new run with more epochs instead.")


def config_from_checkpoint(ckpt) -> FinetuneConfig:
    return config_from_header(ckpt.meta)


def config_from_header(meta: dict) -> FinetuneConfig:
    """The run's config from a checkpoint's metadata, held to the tab's limits (validate_public)."""
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
