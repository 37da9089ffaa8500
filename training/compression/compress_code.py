"""The plain-PyTorch code the Compression sub-tab shows for a run (its code panel, issue #26 item 2).

It runs where only torch, torchvision, safetensors, huggingface_hub, numpy and pillow are installed: mnist5k and the
zoo's weights are read from the Hub (training.plain, zoo.standalone); the models' classes, the int8 quantization
(quantize.py), both prunings (prune.py), the distillation loss and teachers (distill.py) and the trainer's loop are
written out verbatim, so it prints the accuracy of every row of the tab's table but the channel-pruned int8 one
(tests/test_snippets.py runs it with the project unimportable).
"""
from __future__ import annotations

import math

from training.compression import distill, prune, quantize
from training.compression.compress import LabConfig
from training.plain import DATA_IMPORTS, data_source, train_imports, train_source
from zoo import get_spec
from zoo.digits import StudentCNN
from zoo.standalone import digits_classes, joined_imports, model_build, source


def compress_code(cfg: LabConfig) -> str:
    """Plain PyTorch for the lab this config runs, printing the test accuracy of each model it makes."""
    averaged = cfg.teacher == distill.ZOO_AVERAGE
    teachers = list(distill.ZOO_AVERAGE_MEMBERS) if averaged else [cfg.teacher]
    classes = list(dict.fromkeys(get_spec(n).builder.__name__ for n in [cfg.base, *teachers]))
    class_src = "\n\n\n".join([digits_classes(c) for c in classes] + [source(StudentCNN)]
                              + ([source(distill.AveragedTeacher)] if averaged else []))
    if averaged:
        teacher = "\n".join(model_build(n, var=f"t{i}", note=n) for i, n in enumerate(teachers))
        teacher += (f"\nteacher = AveragedTeacher([{', '.join(f't{i}' for i in range(len(teachers)))}]).eval()"
                    "   # the log of their mean probabilities")
    elif cfg.teacher == cfg.base:
        teacher = "teacher = model                                      # the base model teaches"
    else:
        teacher = model_build(cfg.teacher, var="teacher", note=f"the teacher: {cfg.teacher}")
    n_train = 4000                                       # mnist5k's training split
    ft_epochs = max(1, math.ceil(cfg.finetune_steps / max(1, n_train // 64)))
    st_epochs = max(1, math.ceil(cfg.distill_steps / max(1, n_train // 64)))
    ft_loss = (f"distill_loss_fn(copy.deepcopy(model).to(device), temperature={cfg.temperature!r}, "
               f"alpha={cfg.alpha!r}, label_smoothing=0.1)" if cfg.finetune_distill else "None")
    ft = (f'''train(small, train_x, train_y, test_x[:0], test_y[:0], epochs={ft_epochs}, batch_size=64, lr=1e-3,
      max_steps={cfg.finetune_steps}, seed={cfg.seed}, loss_fn={ft_loss})''' if cfg.finetune_steps else
          "# (no fine-tuning steps asked for)")
    kd = (f"distill_loss_fn(copy.deepcopy(teacher).to(device), temperature={cfg.temperature!r}, "
          f"alpha={cfg.alpha!r}, label_smoothing=0.1)" if cfg.alpha > 0 else "None")
    students, rows = "", ""
    if cfg.distill_steps > 0:
        students = f'''
# a student distilled from the teacher, and the same student (the same initial weights) trained alone
torch.manual_seed({cfg.seed})
student = StudentCNN(widths={tuple(cfg.student_widths)!r})
alone = copy.deepcopy(student)
train(student, train_x, train_y, test_x, test_y, epochs={st_epochs}, batch_size=64, lr=2e-3,
      max_steps={cfg.distill_steps}, seed={cfg.seed}, mixup_alpha={cfg.mixup!r},
      loss_fn={kd})   # mixup: the teacher labels the mixed images
train(alone, train_x, train_y, test_x, test_y, epochs={st_epochs}, batch_size=64, lr=2e-3,
      max_steps={cfg.distill_steps}, seed={cfg.seed}, mixup_alpha={cfg.alone_mixup!r})   # cross-entropy only
student.cpu().eval(), alone.cpu().eval()
'''
        rows = (",\n                       (\"student distilled\", student, torch.float32), "
                "(\"student alone\", alone, torch.float32)")
    imports = joined_imports(["import copy", "import warnings", "from contextlib import contextmanager"]
                             + DATA_IMPORTS + train_imports(augment=True)
                             + ["import torch.nn as nn", "import torch.nn.utils.prune as prune",
                                "from torch.ao.quantization import get_default_qconfig_mapping, quantize_dynamic",
                                "from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx",
                                "from safetensors.torch import load_model"])
    return f'''{imports}


{data_source("mnist5k")}


# ---- the models' architectures (this project's zoo/digits.py), written out
{class_src}


# ---- the training loop (training.trainer.train's, as the tab runs it)
{train_source(augment=True, use_mixup=True, loss_fn=True)}


# ---- int8 quantization (training/compression/quantize.py: torch.ao.quantization, deprecated in torch 2.14 but
# the one path here that runs int8 convolutions on a CPU)
{source(("QUANT_ENGINE", quantize.QUANT_ENGINE), quantize._quiet, quantize.quantize_static_fx,
        quantize.quantize_dynamic_linear)}


# ---- pruning (training/compression/prune.py): zeros in place, or really smaller layers
{source(prune.prunable, prune.magnitude_prune, prune._keep, prune._conv_like, prune._bn_like,
        prune._prune_sequential, prune._prune_resnet, prune.channel_prune)}


# ---- distillation (training/compression/distill.py): Hinton et al. 2015
{source(distill.distill_loss, distill.distill_loss_fn)}


{model_build(cfg.base, note=f"the base model: {cfg.base}")}
{teacher}
calib = (train_x[:{cfg.calib_images}] - MEAN) / STD                  # calibration images, normalised

int8 = quantize_static_fx(model, calib)               # int8 static (FX): weights and activations in int8
dyn = quantize_dynamic_linear(model)                  # int8 dynamic, Linear layers only
bf16 = copy.deepcopy(model).to(torch.bfloat16)       # bf16 weights and activations: feed it bf16 images
pruned = magnitude_prune(model, {cfg.sparsity!r})                   # the {cfg.sparsity:.0%} smallest |w| set to 0
small = channel_prune(model, keep_ratio={cfg.keep_ratio!r})        # {cfg.keep_ratio:.0%} of the channels kept
{ft}
small.cpu().eval()
{students}
# The tab also writes each model as safetensors (int8 ones as int8 tensors with their scales and zero points).


@torch.inference_mode()
def accuracy(m, dtype=torch.float32, batch_size=250):     # on the 1,000 test digits, as in the table
    m.eval()
    pred = torch.cat([m(((test_x[i:i + batch_size] - MEAN) / STD).to(dtype)).float().argmax(1)
                      for i in range(0, len(test_x), batch_size)])
    return 100 * (pred == test_y).float().mean().item()


for name, m, dtype in [("baseline", model, torch.float32), ("int8 static", int8, torch.float32),
                       ("int8 dynamic", dyn, torch.float32), ("bf16", bf16, torch.bfloat16),
                       ("magnitude pruned", pruned, torch.float32), ("channel pruned", small, torch.float32){rows}]:
    print(f"{{name}}: {{accuracy(m, dtype):.2f}}%")
'''
