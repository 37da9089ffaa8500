"""'Export this run' in the Fine-tune tab (/export_run): the tab's settings as a zip whose train.py runs on one
device or under torchrun (DistributedDataParallel) on the visitor's own machines."""
from __future__ import annotations

import gradio as gr

from core.tempfiles import run_dir
from training.finetuning.export import build_export
from training.finetuning.finetune_config import DEFAULTS as D
from ui.common import INTERACTIVE, api_endpoint
from ui.errors import api, page, status_box
from ui.finetune_inputs import data_tab_settings, run_config
from ui.i18n import label



@api
def export_run(model: str = D.model, target: str = D.target, zip_file: str | None = None, few_shot: int = D.few_shot,
               stage1_epochs: int = D.stage1_epochs, stage1_lr: float = D.stage1_lr,
               stage2_epochs: int = D.stage2_epochs, stage2_lr: float = D.stage2_lr, unfreeze: str = D.unfreeze,
               optimizer: str = D.optimizer, batch_size: int = D.batch_size, amp: str = D.amp,
               augment: str = D.augment, compare_scratch: bool = True, max_steps: int = 0, seed: int = D.seed,
               request: gr.Request = None) -> str:
    """The run /finetune would make with these parameters (the same names and defaults), as a .zip: train.py,
    config.json, requirements.txt, README.md, the model's source and starting weights. Nothing is trained
    here. zip_file and compare_scratch are accepted so a call to /finetune can be replayed as is; the script
    takes the data folder as --data DIR, and it trains no from-scratch baseline."""
    cfg = run_config(model, target, few_shot, stage1_epochs, stage1_lr, stage2_epochs, stage2_lr, unfreeze, optimizer,
                     batch_size, amp, augment, max_steps, seed)
    if cfg.augment == "data-tab":
        cfg.augment_settings = data_tab_settings(request)
    return build_export(cfg, run_dir("export"))


def attach(inputs: list) -> None:
    """The button, its note and the file, placed where this is called; inputs: /finetune's components, in
    its parameter order."""
    btn = gr.Button(label("export.ui.button"), elem_id="ft-export")
    status = status_box("ft-export-message")        # a problem with the settings, under the button
    gr.Markdown(label("export.ui.note"), elem_id="ft-export-note")
    out = gr.File(label=label("export.ui.file"), interactive=False, elem_id="ft-export-file", height=70)
    btn.click(page((None,))(export_run), inputs, [out, status], api_visibility="private", show_progress="minimal",
              **INTERACTIVE)
    api_endpoint(export_run, inputs, out, "export_run", show_progress="minimal", **INTERACTIVE)
