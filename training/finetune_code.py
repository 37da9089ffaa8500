"""The plain-PyTorch code the Fine-tune tab shows for a run's schedule (its code panel)."""
from __future__ import annotations

from training.finetune_config import FinetuneConfig
from training.transfer import parts_of, trainable_paths
from zoo import get_spec


def finetune_code(cfg: FinetuneConfig) -> str:
    """Plain PyTorch for the schedule this config runs."""
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
