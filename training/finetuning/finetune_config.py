"""What one fine-tuning run is: FinetuneConfig, its validation (and the public server's limits), and the checks
on a checkpoint's header before a run resumes from it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from core.errors import InputError, term
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
            raise InputError("finetune.config_not_object")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError("finetune.unknown_fields", names=", ".join(sorted(map(str, unknown))))
        return validate(cls(**d))


DEFAULTS = FinetuneConfig()   # the one place the defaults are said: the tab's widgets and the API read them here


def validate(c: FinetuneConfig) -> FinetuneConfig:
    def need(cond, key, **values):
        if not cond:
            raise InputError(key, **values)

    def is_int(v, lo, hi):
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    def is_num(v, lo, hi):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi

    need(isinstance(c.model, str) and c.model in finetunable_models(), "finetune.model", model=str(c.model),
         models=", ".join(finetunable_models()))
    need(c.target in TARGETS, "finetune.target", targets=", ".join(TARGETS))
    need(is_int(c.few_shot, 0, 10_000), "finetune.few_shot")
    need(is_int(c.stage1_epochs, 0, 200) and is_int(c.stage2_epochs, 0, 200), "finetune.epochs")
    need(c.stage1_epochs + c.stage2_epochs > 0, "finetune.no_epochs")
    need(is_num(c.stage1_lr, 1e-7, 1.0) and is_num(c.stage2_lr, 1e-7, 1.0), "finetune.learning_rates")
    need(c.unfreeze in UNFREEZE, "finetune.unfreeze", choices=", ".join(UNFREEZE))
    need(c.optimizer in ("adamw", "adam", "sgd"), "finetune.optimizer")
    need(is_int(c.batch_size, 1, 1024), "finetune.batch_size")
    need(c.amp in ("off", "bf16", "fp16"), "finetune.amp")
    need(c.augment in AUGMENT, "finetune.augment", choices=", ".join(AUGMENT))
    need(isinstance(c.augment_settings, dict), "finetune.augment_settings")
    need(is_int(c.eval_every, 0, 100_000), "finetune.eval_every")
    need(c.max_steps is None or is_int(c.max_steps, 1, 10_000_000), "finetune.max_steps")
    need(is_int(c.online_max_items, 10, 60_000), "finetune.online_max_items")
    need(is_int(c.seed, 0, 2**31 - 1), "finetune.seed")
    if c.augment == "data-tab":
        AugmentSettings.from_dict(c.augment_settings)
    return c


# What the Fine-tune tab's controls allow. A public server applies them to every run, from the tab, the API or a
# resumed checkpoint (whose JSON could otherwise ask for 200+200 epochs at batch size 1 and run for hours).
PUBLIC_LIMITS = {"stage1_epochs": (0, 20), "stage2_epochs": (0, 20), "batch_size": (8, 256), "few_shot": (0, 200),
                 "eval_every": (2, 10_000), "online_max_items": (10, 2000)}
FIELDS = {"stage1_epochs": "field.stage1_epochs", "stage2_epochs": "field.stage2_epochs",   # their names, in words
          "batch_size": "field.batch_size", "few_shot": "field.few_shot", "eval_every": "field.eval_every",
          "online_max_items": "field.online_max_items"}


def validate_public(c: FinetuneConfig) -> FinetuneConfig:
    """validate(c), then the tab's own limits (PUBLIC_LIMITS)."""
    validate(c)
    for name, (lo, hi) in PUBLIC_LIMITS.items():
        v = getattr(c, name)
        if not lo <= v <= hi:
            raise InputError("finetune.over_limit", what=term(FIELDS[name]), value=v, lo=lo, hi=hi)
    return c


def check_resumable(meta: dict, position: dict) -> None:
    """A checkpoint whose run already ended has nothing left to train: say so instead of a 0-step 'done'."""
    cfg = meta.get("config") or {}
    last_stage = 2 if cfg.get("stage2_epochs", 0) > 0 else 1
    if meta.get("stage") == last_stage and position.get("step", 0) >= position.get("total_steps", 1):
        acc = meta.get("test_acc")
        where = dict(stage=last_stage, step=position.get("step"), total=position.get("total_steps"))
        if isinstance(acc, (int, float)):
            raise CheckpointError("checkpoint.finished", "This checkpoint's run had already finished (stage {stage}, "
                                  "step {step} of {total}, test accuracy {accuracy:.2f}%): there is nothing left to "
                                  "train. Start a new run with more epochs instead.", accuracy=acc, **where)
        raise CheckpointError("checkpoint.finished_no_accuracy", "This checkpoint's run had already finished (stage "
                              "{stage}, step {step} of {total}): there is nothing left to train. Start a new run "
                              "with more epochs instead.", **where)


def config_from_checkpoint(ckpt) -> FinetuneConfig:
    return config_from_header(ckpt.meta)


def config_from_header(meta: dict) -> FinetuneConfig:
    """The run's config from a checkpoint's metadata, held to the tab's limits (validate_public)."""
    try:
        cfg = validate_public(FinetuneConfig.from_dict(meta.get("config")))
    except InputError as exc:       # the setting's own words, in the visitor's language too (see CheckpointError)
        raise CheckpointError("checkpoint.bad_config", "Refused checkpoint: the run's settings in it are not allowed "
                              "here: {why}", why=dict(term(exc.key, **exc.values), text=str(exc))) from None
    except (ValueError, TypeError) as exc:
        raise CheckpointError("checkpoint.refused", "refused checkpoint: {why}",
                              why=f"its config is invalid ({exc})") from None
    stage = meta.get("stage")
    classes = meta.get("classes")
    if stage not in (1, 2) or not isinstance(classes, list) or not 2 <= len(classes) <= 10_000 \
            or not all(isinstance(c, str) and len(c) < 200 for c in classes):
        raise CheckpointError("checkpoint.refused", "refused checkpoint: {why}",
                              why="stage must be 1 or 2 and classes a list of names")
    return cfg
