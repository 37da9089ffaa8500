"""Publishing a fine-tuned model to the Hugging Face Hub from the Fine-tune tab, with the visitor's own
credentials only (a typed token or their Space sign-in; never the server's)."""
from __future__ import annotations

import json
import os

import gradio as gr

from ui.common import friendly
from zoo.hub import publish as hub_publish
from zoo.hub import save_safetensors_atomic
from zoo.space import on_space
from zoo.tempfiles import run_dir


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
            raise ValueError("that does not look like a Hub token")
        return typed
    if oauth_token is not None and oauth_enabled() and getattr(oauth_token, "token", None):
        return oauth_token.token
    how = "sign in with Hugging Face above, or paste" if oauth_enabled() else "paste"
    raise ValueError(f"publishing uses your own Hub account: {how} a token with write access "
                     "(huggingface.co/settings/tokens)")


@friendly
def publish(state, repo_id: str, token: str, oauth_token: gr.OAuthToken | None = None):
    """Upload the fine-tuned weights (+ config.json, README.md) to a Hugging Face Hub model repo, with the
    visitor's own credentials only (see visitor_token)."""
    if not state:
        raise ValueError("run a fine-tuning job first")
    repo_id = (repo_id or "").strip()
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError("repo id must look like 'user/name'")
    credentials = visitor_token(token, oauth_token)
    res = state["result"]
    folder = run_dir("publish")
    w = save_safetensors_atomic(res.model.state_dict(), os.path.join(folder, "model.safetensors"))
    cfg = os.path.join(folder, "config.json")
    with open(cfg, "w") as f:
        json.dump({"architecture": res.config.model, "classes": list(res.classes), "test_acc": res.test_acc,
                   "finetune_config": res.config.to_dict()}, f, indent=2)
    readme = os.path.join(folder, "README.md")
    with open(readme, "w") as f:
        f.write(f"# {res.config.model} fine-tuned on {res.config.target}\n\nTest accuracy {res.test_acc:.2f}% "
                f"({len(res.preds)} held-out images). Made with PyTorch Playground; weights are safetensors.\n")
    url = hub_publish({"model.safetensors": w, "config.json": cfg, "README.md": readme}, repo_id, token=credentials)
    return f"Published: {url}"
