"""Knowledge distillation (Hinton et al. 2015): teachers (a zoo model or several averaged), the KD loss, and
training a student with it through the project's trainer."""
from __future__ import annotations

import copy
from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.device import get_device
from core.errors import InputError
from training.trainer import train
from zoo.registry import get_model, list_models


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
    return list_models("digits") + [ZOO_AVERAGE]


def check_teacher(name: str) -> str:
    """name, if it names a teacher (teacher_names()); else a ValueError that lists them."""
    if name not in teacher_names():
        raise InputError("compress.teacher", teachers=", ".join(teacher_names()))
    return name


def teacher_model(name: str) -> nn.Module:
    """A digits zoo model, or ZOO_AVERAGE: the average of ZOO_AVERAGE_MEMBERS' probabilities (eval mode, CPU)."""
    if check_teacher(name) == ZOO_AVERAGE:
        return AveragedTeacher([get_model(m).cpu().eval() for m in ZOO_AVERAGE_MEMBERS]).eval()
    return get_model(name).cpu().eval()


def distill_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Hinton et al. 2015: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels).
    The T^2 keeps the soft term's gradients the same size as T changes."""
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
