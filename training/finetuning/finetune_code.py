"""The plain-PyTorch code the Fine-tune tab shows for a run's schedule (its code panel).

Plain PyTorch (issue #26 item 2): the panel runs where only torch, torchvision, safetensors, huggingface_hub, numpy
and pillow are installed. The model's class is copied from zoo/digits.py (zoo.standalone, inspect.getsource); the
data, the new head, each stage's freezing and the training loop of training.trainer.train (optimizer, one-cycle
schedule, label smoothing, augmentation, keep-best, the max-steps knob) are written out, so it prints the
accuracies the tab reports (tests/test_snippets.py runs it with the project unimportable). sklearn's 8x8 digits
and mnist5k come from zoo/weights/ on the Hub (zoo.standalone.DIGITS_DATA_FILE, MNIST5K_DATA_FILE; training.plain),
torchvision's sets from torchvision, an uploaded zip through a plain ImageFolder reader (training.plain.zip_data_source:
the tab's decoding and split, without the checks the server runs on an untrusted upload).
"""
from __future__ import annotations

import textwrap

from training.data.augment import random_affine
from training.finetuning.finetune_config import FinetuneConfig
from training.trainer import set_train_mode
from training.finetuning.transfer import parts_of, trainable_paths
from training.data.transforms import AugmentSettings
from training.plain import ZIP_IMPORTS, data_source, zip_data_source
from zoo.standalone import digits_classes, joined_imports, source
from zoo import get_spec


def finetune_code(cfg: FinetuneConfig) -> str:
    """Plain PyTorch for the run this config makes: the tab's data, the new seeded head, each stage's freezing and
    training (training.trainer.train's loop, written out with every setting), the best weights kept across
    stages, and the test accuracy the tab reports (the same number, at the same thread count)."""
    spec = get_spec(cfg.model)
    w = spec.weights
    model = spec.builder()
    parts = parts_of(model)
    stage2 = trainable_paths(parts, 2, cfg.unfreeze)
    m, s = w.mean, w.std
    mean, std = (m[0], s[0]) if len(m) == 1 else (tuple(m), tuple(s))
    c, h, wd = w.input_size
    settings = textwrap.fill(", ".join(f"{k}={v!r}" for k, v in cfg.to_dict().items()), width=96,
                             initial_indent="# ", subsequent_indent="#   ", break_long_words=False,
                             break_on_hyphens=False)
    torchvision = spec.family != "digits" or cfg.target in ("MNIST", "FashionMNIST", "CIFAR-10") \
        or cfg.augment == "data-tab"
    imports = ["import math" if cfg.augment == "affine" else None, "", "import torch", "import torch.nn as nn",
               "import torch.nn.functional as F", "import torchvision" if torchvision else None,
               "from torchvision.transforms import v2" if cfg.augment == "data-tab" else None,
               "from huggingface_hub import hf_hub_download",
               "from safetensors.torch import load_file, load_model, save_file"]
    if cfg.target == "zip":                    # the ImageFolder reader (training.plain.zip_data_source)
        imports = ZIP_IMPORTS[:3] + imports + ZIP_IMPORTS[4:]
    imports = joined_imports(i for i in imports if i)

    # ---- the model
    if spec.family == "digits":
        cls = spec.builder.__name__
        model_code = f'''# ---- the model: {spec.title}, this project's architecture (zoo/digits.py), written out
{digits_classes(cls)}


model = {cls}()
load_model(model, hf_hub_download("{w.repo_id}", "{w.filename}"), strict=True)   # pretrained, safetensors
'''
    else:
        fn = spec.builder.args[0] if hasattr(spec.builder, "args") else cfg.model
        remap = ""
        if w.key_map:
            remap = (f"\n\n{source(w.key_map)}\n\n\n"
                     "state = timm_vgg_to_torchvision(state)   # timm stores the classifier as convs")
        model_code = f'''# ---- the model: {spec.title} ({w.source})
model = torchvision.models.get_model("{fn}", weights=None)
state = load_file(hf_hub_download("{w.repo_id}", "{w.filename}")){remap}
model.load_state_dict(state, strict=True)   # pretrained, safetensors
'''

    # ---- the data
    data_code = _data_code(cfg)
    if cfg.few_shot:
        data_code += f'''
# few-shot: {cfg.few_shot} training images per class (seeded); the test split is untouched
g = torch.Generator().manual_seed({cfg.seed})
keep = []
for k in torch.unique(train_y).tolist():
    idx = torch.nonzero(train_y == k).flatten()
    keep.append(idx[torch.randperm(len(idx), generator=g)[:{cfg.few_shot}]])
idx = torch.cat(keep)
idx = idx[torch.randperm(len(idx), generator=g)]
train_x, train_y = train_x[idx], train_y[idx]
'''
    src = {"CIFAR-10": (3, 32, 32), "zip": (c, h, wd)}.get(cfg.target, (1, 28, 28))   # the data set's images
    if src != (c, h, wd):
        fit = []
        if src[1:] != (h, wd):
            fit.append(f"    x = F.interpolate(x, size=({h}, {wd}), mode=\"bilinear\", antialias=True, "
                       "align_corners=False).clamp_(0, 1)")
        if src[0] == 1 and c == 3:
            fit.append("    x = x.repeat(1, 3, 1, 1)                   # grey -> RGB")
        elif src[0] == 3 and c == 1:
            fit.append("    x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)")
        fit = "\n".join(fit)
        data_code += f'''

def fit(x):                                    # to the model's input: {c}x{h}x{wd}
{fit}
    return x.contiguous()


train_x, test_x = fit(train_x), fit(test_x)
'''

    # ---- the training loop's settings
    norm = (f"MEAN, STD = {mean!r}, {std!r}                # what the pretrained weights expect" if
            isinstance(mean, float) else
            f"MEAN = torch.tensor({list(mean)!r}, device=device).view(1, -1, 1, 1)   # what the weights expect\n"
            f"STD = torch.tensor({list(std)!r}, device=device).view(1, -1, 1, 1)")
    opt = {"adamw": "torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)",
           "adam": "torch.optim.Adam(params, lr=lr, weight_decay=5e-4)",
           "sgd": "torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)"}[cfg.optimizer]
    aug_defs, aug_lines = "", ""
    if cfg.augment == "affine":
        aug_defs = "\n\n\n" + source(random_affine)
        aug_lines = "\n            xb = random_affine(xb, generator=gen)   # each image its own rotation/shift/scale"
    elif cfg.augment == "data-tab":
        steps = _v2_steps(AugmentSettings.from_dict(cfg.augment_settings), wd)
        if steps:
            aug_defs = ("\n\n# the Data tab's random steps, each image its own draw (torch's global RNG)\n"
                        f"pipeline = v2.Compose([{', '.join(steps)}])")
            aug_lines = "\n            xb = torch.stack([pipeline(x) for x in xb])"
    max_steps = f"\n    total = min(total, {cfg.max_steps})             # the max-steps knob" if cfg.max_steps else ""
    if cfg.eval_every:
        want_eval = f"step % {cfg.eval_every} == 0 or step == total"
    else:
        want_eval = "i == steps_per_epoch - 1 or step == total"
    every = f"every {cfg.eval_every} steps" if cfg.eval_every else "after every epoch"
    global_rng = "dropout, the augmentation" if cfg.augment == "data-tab" else "dropout"
    gen_use = "the shuffling and the augmentation" if cfg.augment == "affine" else "the shuffling"
    if cfg.amp == "off":
        fwd = ("            logits = model(xb)\n"
               "            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)\n"
               "            opt.zero_grad(set_to_none=True)\n"
               "            loss.backward()\n"
               "            opt.step()")
        scaler = ""
    else:
        dt = "bfloat16" if cfg.amp == "bf16" else "float16"
        fwd = (f"            with torch.autocast(device_type=device.type, dtype=torch.{dt}):\n"
               "                logits = model(xb)\n"
               "                loss = F.cross_entropy(logits, yb, label_smoothing=0.1)\n"
               "            opt.zero_grad(set_to_none=True)\n")
        if cfg.amp == "fp16":
            fwd += ("            scaler.scale(loss).backward()\n"
                    "            scaler.step(opt)\n"
                    "            scaler.update()")
            scaler = "\n    scaler = torch.amp.GradScaler(device.type)     # fp16: scale the loss (CUDA only)"
        else:
            fwd += ("            loss.backward()\n"
                    "            opt.step()")
            scaler = ""

    return f'''{imports}

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# The tab's run (FinetuneConfig):
{settings}


{data_code}

{model_code}model.eval()
# a new head for the target classes: nn.Linear's own init, drawn from the run's seed
old = model.get_submodule("{parts.head}")
head = nn.Linear(old.in_features, len(classes))
g = torch.Generator().manual_seed({cfg.seed})
with torch.no_grad():
    bound = 1 / old.in_features ** 0.5
    head.weight.uniform_(-bound, bound, generator=g)
    head.bias.uniform_(-bound, bound, generator=g)
model.{_attr_code(parts.head)} = head
model.to(device)


def trainable(paths):                          # freeze everything, then unfreeze these modules (None: all)
    for p in model.parameters():
        p.requires_grad = paths is None
    for name in paths or []:
        for p in model.get_submodule(name).parameters():
            p.requires_grad = True


# ---- the training loop (the tab's): frozen BatchNorm layers stay in eval mode, so their statistics stay too
{source(set_train_mode)}{aug_defs}


{norm}


@torch.no_grad()
def evaluate(model):                           # top-1 accuracy in percent on the test split
    model.eval()
    correct = 0
    for i in range(0, len(test_x), 500):
        xb = (test_x[i:i + 500].to(device) - MEAN) / STD
        correct += int((model(xb).argmax(1).cpu() == test_y[i:i + 500]).sum())
    return 100.0 * correct / max(1, len(test_x))


def train_stage(epochs, lr, seed):
    """{opt.split("(")[0]} (weight decay 5e-4), a one-cycle schedule, cross-entropy with label smoothing 0.1,
    shuffled batches of {cfg.batch_size} (the ragged last one dropped); the test split scored {every}
    and at the end, the best weights scored kept. Returns the stage's accuracy."""
    torch.manual_seed(seed)                    # the global RNG ({global_rng})
    gen = torch.Generator().manual_seed(seed)  # {gen_use}
    set_train_mode(model)
    xtr, ytr = train_x.to(device), train_y.to(device)
    n = len(xtr)
    bs = max(1, min({cfg.batch_size}, n))
    steps_per_epoch = max(1, n // bs)
    total = epochs * steps_per_epoch{max_steps}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {opt}
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total, 1),
                                                pct_start=0.25 if total != 4 else 0.3){scaler}
    step, last, best_acc, best_state = 0, None, None, None
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[i * bs:(i + 1) * bs]
            xb, yb = xtr[idx], ytr[idx]{aug_lines}
            xb = (xb - MEAN) / STD
{fwd}
            sched.step()
            step += 1
            if {want_eval}:
                acc = evaluate(model)
                last = (step, acc)
                set_train_mode(model)
                if best_acc is None or acc > best_acc:
                    best_acc, best_state = acc, {{k: v.detach().clone() for k, v in model.state_dict().items()}}
        if step >= total:
            break
    model.eval()
    acc = last[1] if last is not None and last[0] == step else evaluate(model)
    if best_state is not None and best_acc > acc:   # keep-best
        model.load_state_dict(best_state)
        acc = best_acc
    return acc


# Stage 1 trains the new head only (the backbone frozen); stage 2 unfreezes ({cfg.unfreeze}) at a lower learning rate.
best = None
for stage, epochs, lr, paths in [(1, {cfg.stage1_epochs}, {cfg.stage1_lr}, ["{parts.head}"]),
                                 (2, {cfg.stage2_epochs}, {cfg.stage2_lr}, {stage2!r})]:
    if epochs == 0:
        continue
    trainable(paths)
    acc = train_stage(epochs, lr, seed={cfg.seed} + stage)
    print(f"stage {{stage}}: {{acc:.2f}}%")
    if best is None or acc >= best[0]:
        best = (acc, {{k: v.detach().clone() for k, v in model.state_dict().items()}})
    else:                                      # a stage 2 that ends worse gives stage 1's weights back
        model.load_state_dict(best[1])

model.eval()
acc = evaluate(model)
print(f"test accuracy {{acc:.2f}}% on {{len(test_x)}} held-out images")
save_file(model.state_dict(), "finetuned.safetensors")   # weights as safetensors, not a pickle
'''


def _data_code(cfg: FinetuneConfig) -> str:
    """The lines that make train_x, train_y, test_x, test_y (N, C, H, W) in [0, 1] and `classes`."""
    if cfg.target in ("digits", "mnist5k"):
        return data_source(cfg.target) + "\n"
    if cfg.target in ("MNIST", "FashionMNIST", "CIFAR-10"):
        n, n_test = cfg.online_max_items, max(10, cfg.online_max_items // 4)
        ds = {"MNIST": "MNIST", "FashionMNIST": "FashionMNIST", "CIFAR-10": "CIFAR10"}[cfg.target]
        head = (f"# ---- the data: torchvision's {cfg.target} (downloaded once): its first {n} training, "
                f"{n_test} test images")
        return head + f'''
def tensors(ds, n):
    x = torch.as_tensor(ds.data)[:n]
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)     # (N, C, H, W) uint8
    return x.float().div_(255.0), torch.as_tensor(ds.targets).long()[:n]


train = torchvision.datasets.{ds}("data", train=True, download=True)
test = torchvision.datasets.{ds}("data", train=False, download=True)
train_x, train_y = tensors(train, {n})
test_x, test_y = tensors(test, {n_test})
classes = [str(k) for k in train.classes]
'''
    c, h, w = get_spec(cfg.model).weights.input_size
    return zip_data_source((h, w), c) + "\n"


def _v2_steps(s: AugmentSettings, size: int) -> list[str]:
    """training.data.transforms.batch_transform's steps as source text (the same v2 transforms, the same order)."""
    fill = s.fill / 255.0
    ts = []
    if s.crop_size and s.crop_padding:
        ts.append(f"v2.RandomCrop({size}, padding={s.crop_padding}, fill={fill!r}, padding_mode={s.padding_mode!r})")
    if s.rrc_size:
        ts.append(f"v2.RandomResizedCrop({size}, scale=({s.rrc_scale_min!r}, 1.0), antialias=True)")
    if s.hflip_p:
        ts.append(f"v2.RandomHorizontalFlip({s.hflip_p!r})")
    if s.vflip_p:
        ts.append(f"v2.RandomVerticalFlip({s.vflip_p!r})")
    if s.rotation:
        ts.append(f"v2.RandomRotation({s.rotation!r}, fill={fill!r})")
    jitter = {k: getattr(s, k) for k in ("brightness", "contrast", "saturation", "hue") if getattr(s, k)}
    if jitter:
        ts.append(f"v2.ColorJitter({', '.join(f'{k}={v!r}' for k, v in jitter.items())})")
    return ts


def _attr_code(path: str) -> str:
    """'classifier.6' -> 'classifier[6]' (valid Python for assignment)."""
    out = []
    for part in path.split("."):
        out.append(f"[{part}]" if part.isdigit() else ("." + part if out else part))
    return "".join(out)
