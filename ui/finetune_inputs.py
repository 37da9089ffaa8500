"""The Fine-tune tab's inputs as a validated FinetuneConfig: shared by /finetune (ui/finetune.py) and
/export_run (ui/export_run.py), which take the same parameters."""
from __future__ import annotations

import gradio as gr

from training.finetuning.finetune_config import FinetuneConfig, validate_public
from training.data.transforms import AugmentSettings
from ui.common import whole_number
from ui.data import last_settings


def run_config(model, target, few_shot, stage1_epochs, stage1_lr, stage2_epochs, stage2_lr, unfreeze, optimizer,
               batch_size, amp, augment, max_steps, seed, augment_settings=None) -> FinetuneConfig:
    """The config these tab inputs make, held to the tab's limits (validate_public)."""
    max_steps = whole_number(max_steps, "field.max_steps", 0, 10_000_000)
    seed = whole_number(seed, "field.seed", 0, 2**31 - 1)
    return validate_public(FinetuneConfig(
        model=model, target=target, few_shot=int(few_shot), stage1_epochs=int(stage1_epochs),
        stage1_lr=float(stage1_lr), stage2_epochs=int(stage2_epochs), stage2_lr=float(stage2_lr), unfreeze=unfreeze,
        optimizer=optimizer, batch_size=int(batch_size), amp=amp, augment=augment,
        augment_settings=augment_settings or {}, max_steps=int(max_steps) if max_steps else None, seed=int(seed)))


def data_tab_settings(request: gr.Request | None) -> dict:
    """The augmentation this session last applied on the Data tab (its random steps; sizes follow the model),
    or, before any, a digit-friendly default: padded crop, small rotation, brightness/contrast."""
    mine = last_settings(getattr(request, "session_hash", None))
    if mine is not None:
        return dict(mine)
    return AugmentSettings(resize=0, crop_size=28, crop_padding=2, rotation=10, hflip_p=0.0, brightness=0.2,
                           contrast=0.2).to_dict()
