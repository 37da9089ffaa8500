"""Convert torchvision's AlexNet IMAGENET1K_V1 checkpoint to safetensors and (optionally) push it to the Hub.

    python -m zoo.convert_alexnet --out alexnet.safetensors [--push your-name/alexnet.tv_in1k]

Needs the internet once (torchvision downloads its .pth). The .pth is read with weights_only=True (no code runs),
checked strictly against torchvision.models.alexnet(), and written as safetensors; then set
PLAYGROUND_ALEXNET_REPO=your-name/alexnet.tv_in1k so the app loads it from there.
"""
from __future__ import annotations

import argparse
import sys

import torch
import torchvision.models as tvm
from torch.hub import load_state_dict_from_url

from zoo.hub import load_state_strict, publish, save_safetensors_atomic


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="alexnet.safetensors")
    ap.add_argument("--push", help="Hub repo id to upload model.safetensors to")
    ap.add_argument("--token")
    args = ap.parse_args(argv)

    w = tvm.AlexNet_Weights.IMAGENET1K_V1
    state = load_state_dict_from_url(w.url, progress=True, weights_only=True)
    model = tvm.alexnet(weights=None)
    load_state_strict(model, state)
    save_safetensors_atomic(model.state_dict(), args.out,
                            metadata={"source": w.url, "converted_by": "zoo.convert_alexnet"})
    print(f"wrote {args.out} ({sum(v.numel() for v in state.values()):,} parameters, torch {torch.__version__})")
    if args.push:
        print(publish({"model.safetensors": args.out}, args.push, token=args.token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
