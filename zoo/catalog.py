"""The zoo's entries: the digits family (ours, shipped in the repo) and the ImageNet family (Hub only)."""
from __future__ import annotations

from functools import partial

import torch

from core.settings import settings
from zoo.digits import AlexNetDigits, ResNetDigits, VGGDigits
from zoo.hub import read_manifest
from zoo.registry import ModelSpec, Weights, register_model

# Where `python -m zoo.publish` pushes our own weights by default (override with --repo / PLAYGROUND_HUB_REPO).
DIGITS_REPO = settings().hub_repo
# The AlexNet ImageNet weights: torchvision's IMAGENET1K_V1 converted by `python -m zoo.convert_alexnet`.
ALEXNET_REPO = settings().alexnet_repo

# The digits weights' input conventions, their one home (training, the FID features and the exported
# script read them from here): MNIST's own normalisation constants (mean/std of its 60k training images)
# and the class names.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
DIGIT_CLASSES = [str(i) for i in range(10)]

_MANIFEST = read_manifest()

def _digits(name: str, title: str, builder, about: str) -> ModelSpec:
    m = _MANIFEST.get(name, {})
    n_params = sum(p.numel() for p in builder().parameters())
    return register_model(ModelSpec(
        name=name, family="digits", builder=builder, title=title, about=about,
        weights=Weights(
            repo_id=DIGITS_REPO, filename=f"{name}.safetensors", local_file=f"{name}.safetensors",
            input_size=(1, 28, 28), mean=(MNIST_MEAN,), std=(MNIST_STD,), categories=tuple(DIGIT_CLASSES),
            num_params=n_params, accuracy=m.get("accuracy", {}),
            train_command=m.get("train_command", f"python -m training.train_digits --model {name}"),
            source="trained by this project on mnist5k (shipped in zoo/weights)"),
    ))

_digits("resnet_digits", "ResNet (digits)", ResNetDigits,
        "BasicBlocks with identity shortcuts, 3 strided stages, global average pooling")
_digits("vgg_digits", "VGG (digits)", VGGDigits, "stacked 3x3 convs from a VGG-11 config table, dropout FC head")
_digits("alexnet_digits", "AlexNet (digits)", AlexNetDigits,
        "5 convs with LRN and overlapping pooling, 3 dropout FC layers")
_digits("resnet_digits_hard", "ResNet (digits, hard labels)", ResNetDigits,
        "the same ResNet trained without label smoothing: sharper probabilities; one of the distillation "
        "lab's teachers (its students did worse than resnet_digits': README)")

def timm_vgg_to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm's vgg*.tv_in1k stores torchvision's classifier as 1x1/7x7 convs (pre_logits.fc1/fc2, head.fc): undo it."""
    out = {}
    for k, v in state.items():
        if k.startswith("pre_logits.fc1."):
            k = k.replace("pre_logits.fc1.", "classifier.0.")
            v = v.reshape(v.shape[0], -1) if k.endswith("weight") else v   # (4096, 512, 7, 7) -> (4096, 25088)
        elif k.startswith("pre_logits.fc2."):
            k = k.replace("pre_logits.fc2.", "classifier.3.")
            v = v.reshape(v.shape[0], -1) if k.endswith("weight") else v   # (4096, 4096, 1, 1) -> (4096, 4096)
        elif k.startswith("head.fc."):
            k = k.replace("head.fc.", "classifier.6.")
        out[k] = v
    return out

# (name, torchvision builder, weights enum member name, Hub repo, key map, title)
_IMAGENET = [
    ("alexnet", "alexnet", "AlexNet_Weights", ALEXNET_REPO, None, "AlexNet (ImageNet)"),
    ("vgg16", "vgg16", "VGG16_Weights", "timm/vgg16.tv_in1k", timm_vgg_to_torchvision, "VGG-16 (ImageNet)"),
    ("resnet18", "resnet18", "ResNet18_Weights", "timm/resnet18.tv_in1k", None, "ResNet-18 (ImageNet)"),
    ("resnet50", "resnet50", "ResNet50_Weights", "timm/resnet50.tv_in1k", None, "ResNet-50 (ImageNet)"),
]
# Parameter counts and ImageNet-1k top-1 from torchvision's weights metadata (IMAGENET1K_V1), so the
# catalogue does not import torchvision.models at start-up. Checked against it in tests/test_zoo.py.
_IMAGENET_FACTS = {
    "alexnet": (61100840, 56.522), "vgg16": (138357544, 71.592),
    "resnet18": (11689512, 69.758), "resnet50": (25557032, 76.13),
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

def _tv_builder(fn_name: str):
    import torchvision.models as tvm  # on first use: processes that import the zoo rarely build an ImageNet model

    return tvm.get_model(fn_name, weights=None)

def imagenet_categories() -> tuple[str, ...]:
    """The 1,000 ImageNet class names from torchvision's metadata (in the wheel: no download)."""
    from torchvision.models import ResNet18_Weights  # on first use, as in _tv_builder

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])

for _name, _fn, _enum, _repo, _kmap, _title in _IMAGENET:
    _params, _top1 = _IMAGENET_FACTS[_name]
    register_model(ModelSpec(
        name=_name, family="imagenet", builder=partial(_tv_builder, _fn), title=_title,
        about=f"torchvision.models.{_fn} (weights=None), weights {_enum}.IMAGENET1K_V1 as safetensors from {_repo}",
        weights=Weights(
            repo_id=_repo, filename="model.safetensors", input_size=(3, 224, 224), mean=IMAGENET_MEAN,
            std=IMAGENET_STD, categories=(), num_params=_params, accuracy={"imagenet-1k top-1 (torchvision)": _top1},
            key_map=_kmap, train_command=f"torchvision {_enum}.IMAGENET1K_V1",
            source=f"Hugging Face Hub: {_repo}"),
    ))

def categories_of(spec: ModelSpec) -> tuple[str, ...]:
    """Class names; the ImageNet list is read from torchvision's metadata only when needed."""
    return spec.weights.categories or imagenet_categories()
