"""The plain-PyTorch code panels of the Look inside tab (issue #26 item 2).

Each runs where only torch, torchvision, safetensors, huggingface_hub, numpy and pillow are installed, plus the one
library the view is about where it needs one, named in the panel (captum for Grad-CAM and saliency, torchinfo for the
summary, matplotlib for the weight histograms): the model's class (a digits model: zoo/digits.py, verbatim) or
torchvision's builder, the weights the app ships read with safetensors from the Hub (zoo.standalone), and the digits'
preprocessing written out. tests/test_snippets.py runs them with the project unimportable.
"""
from __future__ import annotations

from look_inside.activations import _call_index
from zoo import get_spec
from zoo.standalone import (imagenet_preprocess_source, joined_imports, model_build, model_definitions,
                            model_imports, preprocess_source)


def _defs(*parts: str) -> str:
    return "\n\n\n".join(p for p in parts if p)


def _input(model_name: str) -> tuple[list[str], str, str]:
    """(imports, definitions, the line that makes x (C, H, W), normalised) for the tab's input picture."""
    spec = get_spec(model_name)
    w = spec.weights
    if spec.family == "digits":
        return (["import numpy as np", "import torch", "import torch.nn.functional as F",
                 "from PIL import Image, ImageOps"], preprocess_source(),
                f'x = (mnist_preprocess("digit.png") - {w.mean[0]}) / {w.std[0]}  # (1, 28, 28), MNIST mean/std')
    return (["import torch", "import torchvision.transforms.v2 as T", "from PIL import Image"],
            imagenet_preprocess_source(w.mean, w.std), 'x = preprocess("photo.jpg")  # (3, 224, 224)')


def activation_code(model_name: str, layer: str, module: str | None, family: str) -> str:
    """Plain PyTorch that produces the feature-map grid and the statistics."""
    imports, pre_defs, x_line = _input(model_name)
    target = f'model.get_submodule("{module}")' if module else None
    hook = (f'''acts = []
handle = {target}.register_forward_hook(
    lambda mod, inp, out: acts.append(out.detach().clone()))   # clone: a later in-place ReLU would overwrite it
with torch.inference_mode():
    model(x.unsqueeze(0))
handle.remove()
fmap = acts[{_call_index(layer)}][0]                                  # (C, H, W): call #{_call_index(layer)} \
of this module'''
            if target else f'''# "{layer}" is a function node (no module to hook): ask torch.fx for it
fx = create_feature_extractor(model, return_nodes=["{layer}"])
with torch.inference_mode():
    fmap = fx(x.unsqueeze(0))["{layer}"][0].clone()''')
    fx_import = [] if target else ["from torchvision.models.feature_extraction import create_feature_extractor"]
    imports = joined_imports(imports + model_imports(model_name)
                             + ["from torchvision.models.feature_extraction import get_graph_node_names"] + fx_import)
    return f'''{imports}


{_defs(model_definitions(model_name), pre_defs)}


{model_build(model_name)}
train_nodes, eval_nodes = get_graph_node_names(model)   # every layer name, in execution order
{x_line}

{hook}

top = fmap.mean(dim=(1, 2)).topk(16).indices      # the 16 channels that fire most on average
grid = fmap[top]                                  # (16, H, W): each map min-max scaled into one picture
print("mean", fmap.mean().item(), "std", fmap.std(unbiased=False).item(),
      "zero fraction", (fmap == 0).float().mean().item())
# Dead units: run a batch (e.g. 256 test digits) through the same hook; a unit is dead if it is 0 for all of them:
# dead = (batch_acts.amax(dim=0) <= 0).float().mean()
'''


def attribution_code(model_name: str, layer: str, target: int | None, family: str) -> str:
    """Plain PyTorch and captum (pip install captum) that produce the Grad-CAM and saliency maps."""
    imports, pre_defs, x_line = _input(model_name)
    tgt = "model(x).argmax(1).item()   # the predicted class" if target is None else str(int(target))
    imports = joined_imports(imports + model_imports(model_name)
                             + ["from captum.attr import LayerAttribution, LayerGradCam, Saliency"])
    return f'''# Grad-CAM and saliency come from captum, PyTorch's attribution library (pip install captum)
{imports}


{_defs(model_definitions(model_name), pre_defs)}


{model_build(model_name)}
{x_line}
x = x.unsqueeze(0)
target = {tgt}

layer = model.get_submodule("{layer}")                   # the Grad-CAM target layer
cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)  # (1, 1, h, w)
cam = LayerAttribution.interpolate(cam, x.shape[-2:], interpolate_mode="bilinear")   # (1, 1, H, W)
cam = cam[0, 0] / cam.max().clamp_min(1e-12)             # [0, 1], overlaid on the input with a colormap

x.requires_grad_(True)
saliency = Saliency(model).attribute(x, target=target, abs=True)  # |d logit_target / d pixel|
saliency = saliency[0].amax(dim=0)                       # max over colour channels -> (H, W)
p = model(x).softmax(1)[0, target].item()
print(f"target class {{target}} (p = {{p:.1%}}); Grad-CAM peak at (row, col)", divmod(int(cam.argmax()), cam.shape[1]))
'''


def weights_code(model_name: str, random_seed: int | None, zero_tol: float) -> str:
    """Plain PyTorch for the weight statistics and filters; matplotlib (named in the panel) for the histograms."""
    trained = random_seed is None
    build = (model_build(model_name, note="trained weights") if trained else
             f"torch.manual_seed({int(random_seed)})\n" + model_build(model_name, weights=False, note="random init"))
    imports = joined_imports(["import torch"] + model_imports(model_name, weights=trained)
                             + ["import torchvision", "import matplotlib.pyplot as plt"])
    return f'''# The histograms are drawn with matplotlib (pip install matplotlib); the rest is plain PyTorch
{imports}


{_defs(model_definitions(model_name, weights=trained))}


{build}
for name, w in model.named_parameters():
    w = w.detach().double().flatten()
    print(f"{{name:40s}} mean {{w.mean():+.4f}} std {{w.std(unbiased=False):.4f}} "
          f"min {{w.min():+.4f}} max {{w.max():+.4f}} L2 {{w.norm():.3f}} "
          f"near zero {{(w.abs() < {zero_tol:g}).double().mean():.2%}}")

# histograms: one per weight tensor
weights = {{n: p.detach().flatten() for n, p in model.named_parameters() if p.dim() > 1}}
fig, axes = plt.subplots(len(weights), 1, figsize=(6, 1.2 * len(weights)), sharex=True, squeeze=False)
for ax, (n, w) in zip(axes[:, 0], weights.items()):
    ax.hist(w.numpy(), bins=60)
    ax.set_ylabel(n, rotation=0, ha="right", fontsize=7)
fig.savefig("histograms.png", bbox_inches="tight")

# first-layer filters as images
conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
f = conv.weight.detach()                                  # (out, in, k, k)
f = (f - f.amin(dim=(1, 2, 3), keepdim=True)) / \\
(f.amax(dim=(1, 2, 3), keepdim=True) - f.amin(dim=(1, 2, 3), keepdim=True))
torchvision.utils.save_image(f if f.shape[1] == 3 else f.mean(1, keepdim=True), "filters.png", nrow=8, padding=1)
'''


def compare_code(model_name: str, a_desc: str, b_desc: str, seed: int = 0, uploaded: bool = False) -> str:
    """The comparison as plain PyTorch: A = the seeded random init and B = the trained weights, or (uploaded)
    A = the trained weights and B = the user's file, saved next to the script as finetuned.safetensors."""
    w = get_spec(model_name).weights
    remap = "timm_vgg_to_torchvision(load_file(\"finetuned.safetensors\"))" if w.key_map else \
        "load_file(\"finetuned.safetensors\")"
    b_file = model_build(model_name, var="b", weights=False, note="your file (saved as finetuned.safetensors):")
    b_file += f"\nb.load_state_dict({remap}, strict=True)"
    if uploaded:
        pair = f"{model_build(model_name, var='a', note='the shipped, trained weights')}\n{b_file}"
    else:
        b_file = "from safetensors.torch import load_file\n" + b_file
        pair = (f"torch.manual_seed({int(seed)})\n"
                f"{model_build(model_name, var='a', weights=False, note='random init (seeded)...')}\n"
                f"{model_build(model_name, var='b', note='...vs the trained weights, or:')}\n"
                + "\n".join("# " + line for line in b_file.splitlines()))
    imports = joined_imports(["import torch"] + model_imports(model_name)
                             + (["from safetensors.torch import load_file"] if uploaded else []))
    return f'''{imports}


{_defs(model_definitions(model_name))}


# A = {a_desc}, B = {b_desc}
{pair}

pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
for name in pa:
    wa, wb = pa[name].detach().flatten().double(), pb[name].detach().flatten().double()
    rel = (wb - wa).norm() / wa.norm()                              # inf when A is all zeros (BN biases at init)
    cos = torch.nn.functional.cosine_similarity(wa, wb, dim=0)
    print(f"{{name:40s}} relative change {{rel:.4f}}  cosine {{cos:.4f}}")
'''


def summary_code(model_name: str, input_size: tuple[int, ...], depth: int) -> str:
    """torchinfo's summary (named in the panel) of the model's architecture, random weights."""
    imports = joined_imports(model_imports(model_name, weights=False) + ["from torchinfo import summary"])
    return f'''# The table comes from torchinfo (pip install torchinfo); the model is plain PyTorch
{imports}


{_defs(model_definitions(model_name, weights=False))}


{model_build(model_name, weights=False, note="shapes and counts do not depend on the weights")}
print(summary(model, input_size={tuple(input_size)}, depth={int(depth)},
              col_names=("output_size", "num_params", "mult_adds"), mode="eval"))
'''
