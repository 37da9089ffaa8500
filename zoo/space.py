"""Whether this process runs as a Hugging Face Space, by the same test Gradio uses (gradio.utils.get_space)."""
from __future__ import annotations

import os


def on_space() -> bool:
    """True on a Space: SYSTEM=spaces and a SPACE_ID, both set by the Spaces runtime.

    Gradio 6.31 decides with exactly this (utils.get_space: SPACE_ID, but only when SYSTEM == "spaces") whether
    to trust the Space's proxy, offer real OAuth instead of its local mock, and so on; the app must agree with it,
    or its own Space-only rules (per-address caps, sign-in) would run in a setup Gradio does not treat as a Space.
    """
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("SPACE_ID"))
