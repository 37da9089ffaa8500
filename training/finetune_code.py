"""The plain-PyTorch code the Fine-tune tab shows for a run's schedule (its code panel)."""
from __future__ import annotations

import textwrap

from training.finetune_config import FinetuneConfig
from training.transfer import parts_of, trainable_paths
from zoo import get_spec


def finetune_code(cfg: FinetuneConfig) -> str:
    """Plain PyTorch for the run this config makes: the tab's data, the new seeded head, each stage's freezing and
    training (training.trainer.train, the loop the tab runs, with every setting spelled out), the best weights
    kept across stages, and the test accuracy the tab reports (the same number, at the same thread count)."""
    spec = get_spec(cfg.model)
    model = spec.builder()
    parts = parts_of(model)
    stage2 = trainable_paths(parts, 2, cfg.unfreeze)
    m, s = spec.weights.mean, spec.weights.std
    mean, std = (m[0], s[0]) if len(m) == 1 else (tuple(m), tuple(s))
    opt = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD (momentum 0.9, Nesterov)"}[cfg.optimizer]
    augment = {"none": "no augmentation", "affine": "a random rotation/shift/scale of each image",
               "data-tab": "the Data tab's v2 pipeline on each image"}[cfg.augment]
    settings = textwrap.fill(", ".join(f"{k}={v!r}" for k, v in cfg.to_dict().items()), width=96,
                             subsequent_indent=" " * 21, break_long_words=False, break_on_hyphens=False)
    zip_arg = ', zip_path="my_images.zip"' if cfg.target == "zip" else ""
    transform, transform_arg = "", ""
    if cfg.augment == "data-tab":
        c, h, w = spec.weights.input_size
        transform = ("from training.transforms import AugmentSettings, batch_transform\n"
                     f"transform = batch_transform(AugmentSettings.from_dict(cfg.augment_settings), {w})\n")
        transform_arg = ", transform=transform"
    return f'''import torch
import torch.nn as nn
from training.finetune import load_target      # the tab's data set at the model's input size (few-shot applied)
from training.finetune_config import FinetuneConfig
from training.trainer import TrainConfig, evaluate, train
from zoo import get_model      # {spec.title}: {spec.weights.source}

cfg = FinetuneConfig({settings})
data = load_target(cfg{zip_arg})                  # train_x, train_y, test_x, test_y in [0, 1], classes
{transform}model = get_model("{cfg.model}")               # pretrained weights, loaded strictly from safetensors
# a new head for the target classes: nn.Linear's own init, drawn from the run's seed
old = model.get_submodule("{parts.head}")
head = nn.Linear(old.in_features, len(data.classes))
g = torch.Generator().manual_seed({cfg.seed})
with torch.no_grad():
    bound = 1 / old.in_features ** 0.5
    head.weight.uniform_(-bound, bound, generator=g)
    head.bias.uniform_(-bound, bound, generator=g)
model.{_attr_code(parts.head)} = head


def trainable(paths):                          # freeze everything, then unfreeze these modules (None: all)
    for p in model.parameters():
        p.requires_grad = False
    for name in paths if paths is not None else [""]:   # "" is the whole model
        for p in model.get_submodule(name).parameters():
            p.requires_grad = True


# Each stage trains with {opt} (weight decay 5e-4) and a one-cycle schedule, cross-entropy with label
# smoothing 0.1, shuffled batches of {cfg.batch_size} (the stage's seed), {augment};
# frozen BatchNorm layers stay in eval mode; the test split is scored every {cfg.eval_every} steps, the best
# weights are kept. Stage 1 trains the new head only; stage 2 unfreezes ({cfg.unfreeze}) at a lower learning rate.
best = None
for stage, epochs, lr, paths in [(1, {cfg.stage1_epochs}, {cfg.stage1_lr}, ["{parts.head}"]),
                                 (2, {cfg.stage2_epochs}, {cfg.stage2_lr}, {stage2!r})]:
    if epochs == 0:
        continue
    trainable(paths)
    run = TrainConfig(epochs=epochs, lr=lr, batch_size={cfg.batch_size}, optimizer="{cfg.optimizer}",
                      augment={cfg.augment == "affine"}, max_steps={cfg.max_steps}, seed={cfg.seed} + stage,
                      eval_every={cfg.eval_every}, mean={mean!r}, std={std!r}, amp="{cfg.amp}", keep_best=True)
    acc = train(model, data, run{transform_arg})["test_acc"]
    print(f"stage {{stage}}: {{acc:.2f}}%")
    if best is None or acc >= best[0]:
        best = (acc, {{k: v.detach().clone() for k, v in model.state_dict().items()}})
    else:                                      # a stage 2 that ends worse gives stage 1's weights back
        model.load_state_dict(best[1])

model.eval()
acc = evaluate(model, data.test_x, data.test_y, {mean!r}, {std!r})
print(f"test accuracy {{acc:.2f}}% on {{len(data.test_x)}} held-out images")

from safetensors.torch import save_file        # weights as safetensors, not a pickle
save_file(model.state_dict(), "finetuned.safetensors")
'''


def _attr_code(path: str) -> str:
    """'classifier.6' -> 'classifier[6]' (valid Python for assignment)."""
    out = []
    for part in path.split("."):
        out.append(f"[{part}]" if part.isdigit() else ("." + part if out else part))
    return "".join(out)
