"""Data and Fine-tune tabs through gradio_client and in Chromium."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from tests.conftest import open_tab


@pytest.fixture
def png(tmp_path):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_augment_endpoint(client, png):
    from gradio_client import handle_file

    gallery, summary, code = client.predict(handle_file(png), api_name="/augment")
    assert len(gallery) == 8 and "(3, 64, 64)" in summary and "torch.float32" in summary
    assert "v2.RandomCrop(size=64, padding=4, pad_if_needed=False, fill=0, padding_mode='constant')" in code
    again = client.predict(handle_file(png), api_name="/augment")
    assert again[1] == summary  # seeded: the same draws


def test_one_hot_and_dataloader_endpoints(client):
    t, sk, note, code = client.predict("2, 0, 5", api_name="/one_hot")
    assert len(t["headers"]) == 7 and len(sk["headers"]) == 4  # label + 6 classes (0..5) vs label + 3 seen
    assert "F.one_hot" in code and "OneHotEncoder" in code
    img, note, code = client.predict("digits", 8, True, 0, False, 0, api_name="/dataloader")
    assert "(8, 1, 28, 28)" in note and "class ImageTensorDataset(Dataset)" in code


def test_finetune_endpoint_streams_and_ends_with_metrics(client):
    job = client.submit(max_steps=3, compare_scratch=False, api_name="/finetune")
    outs = job.result(timeout=300)
    status, loss, acc, metrics, per_class, confusion, files, code, *_ = outs
    assert "Test accuracy" in metrics and "stage 2" in metrics
    assert len(files) == 2 and all(str(f).endswith(".safetensors") for f in files)
    # the panel writes the freezing out (plain PyTorch: freeze everything, then unfreeze the stage's modules)
    assert len(per_class["data"]) == 10 and "p.requires_grad = paths is None" in code and "trainable(" in code


def test_hostile_checkpoint_upload_is_refused(client, tmp_path):
    from gradio_client import handle_file

    evil = tmp_path / "evil.safetensors"
    torch.save({"model": {"w": torch.zeros(2)}}, evil)  # a pickle named like safetensors
    with pytest.raises(Exception, match="not a safetensors file"):
        client.predict(handle_file(str(evil)), None, api_name="/resume")


def test_data_tab_in_browser(page):
    open_tab(page, "Data")
    page.locator("#augment-btn").click()
    page.wait_for_function("document.querySelectorAll('#aug-gallery img').length >= 8", timeout=60_000)
    assert "torch.float32" in page.locator("#aug-summary").inner_text()
    page.locator(".cm-content", has_text="v2.Compose").first.wait_for(timeout=30_000)   # the Data tab's code panel


@pytest.mark.slow
def test_finetune_tab_in_browser(page):
    """A visitor's first run: live status with steps (also during the from-scratch comparison), both curves drawn
    for both runs, a clickable confusion-matrix cell, Cancel's note cleared when the run ends."""
    from tests.conftest import ARTIFACTS

    open_tab(page, "Fine-tune")
    steps = page.get_by_label("Max steps per stage (0 = no cap)")
    steps.fill("12")
    steps.press("Tab")
    page.locator("#ft-start").click()
    page.wait_for_function("document.querySelector('#ft-status').innerText.includes('step')", timeout=180_000)
    page.wait_for_function("document.querySelector('#ft-status').innerText.includes('from scratch')",
                           timeout=180_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "finetune_during_scratch.png"), full_page=True)
    page.wait_for_function("document.querySelector('#ft-metrics').innerText.includes('Test accuracy')",
                           timeout=180_000)
    assert "from scratch" in page.locator("#ft-metrics").inner_text()
    assert "Waiting for the accelerator" not in page.locator("body").inner_text()
    for plot in ("#ft-loss", "#ft-acc"):
        page.wait_for_selector(f"{plot} canvas, {plot} svg", timeout=30_000)
    page.locator("#ft-confusion").get_by_role("gridcell").nth(3).click()
    page.wait_for_function("document.body.innerText.includes('test images: true')", timeout=60_000)
    page.locator("#ft-show-cell").click()
    page.wait_for_function("document.body.innerText.includes('test images: true')", timeout=60_000)
    page.wait_for_timeout(1500)            # let the charts finish drawing before the screenshot


def test_publish_fine_tuned_weights_to_the_hub(fake_hub):
    from safetensors.torch import load

    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import FinetuneConfig
    from ui.finetune_publish import publish

    cfg = FinetuneConfig(max_steps=1, stage2_epochs=0)
    data = load_target(cfg)
    res = run_finetune(cfg, data, device="cpu")
    msg = publish({"result": res, "test_x": data.test_x, "test_y": data.test_y}, "me/digits-ft", "hf_test")
    assert msg.startswith("Published:") and "me/digits-ft" in msg
    files = fake_hub.repos["me/digits-ft"]
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    state = load(files["model.safetensors"])
    assert torch.equal(state["fc.weight"], res.model.state_dict()["fc.weight"])
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name is None and "library_name" not in card.content   # not a Hub library key: none
    assert card.data.license == "mit" and card.data.pipeline_tag == "image-classification"
    assert {"pytorch", "safetensors", "fine-tuned", "resnet_digits"} <= set(card.data.tags)
    assert card.data.base_model is None and card.data.datasets is None     # the zoo's own weights; sklearn's digits
    assert card.data.model_name == "digits-ft" and card.data.metrics == ["accuracy"]
    (result,) = card.data.eval_results
    assert (result.task_type, result.dataset_type, result.dataset_split) == ("image-classification", "sklearn-digits",
                                                                             "test")
    assert (result.metric_type, result.metric_value) == ("accuracy", round(res.test_acc, 2))
    assert f"on {len(res.preds)} held-out images" in card.text and "ResNetDigits(num_classes=10)" in card.text


def test_imagenet_fine_tune_card_names_its_base_model_and_data(tmp_path):
    """An ImageNet fine-tune's card links the Hub's model tree (base_model: the weights repo it started from) and
    its Hub data set, and keeps the base weights' licence; its loading code is plain torchvision + safetensors
    and fits the fine-tuned state dict (the new head is torchvision's own, sized for the classes)."""
    from types import SimpleNamespace

    import torchvision
    from safetensors.torch import load_model, save_file

    from training.finetuning.finetune_config import FinetuneConfig
    from training.finetuning.transfer import parts_of, replace_head
    from ui.finetune_publish import finetune_card
    from zoo import get_model

    model = get_model("resnet18", weights=None)
    replace_head(model, parts_of(model), 10)
    res = SimpleNamespace(config=FinetuneConfig(model="resnet18", target="CIFAR-10"), classes=tuple("abcdefghij"),
                          test_acc=81.234, preds=torch.zeros(500), model=model)
    card = finetune_card(res, "me/resnet18-cifar10")
    assert card.data.base_model == "timm/resnet18.tv_in1k" and card.data.base_model_relation == "finetune"
    assert card.data.datasets == ["uoft-cs/cifar10"] and card.data.license == "bsd-3-clause"
    assert card.data.library_name is None and card.data.pipeline_tag == "image-classification"
    (result,) = card.data.eval_results
    assert (result.dataset_type, result.metric_type, result.metric_value) == ("uoft-cs/cifar10", "accuracy", 81.23)
    assert "torchvision.models.get_model('resnet18', weights=None, num_classes=10)" in card.text
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    fresh = torchvision.models.get_model("resnet18", weights=None, num_classes=10)
    assert load_model(fresh, tmp_path / "model.safetensors", strict=True) == (set(), [])   # strict: every key fits


@pytest.mark.slow
def test_resample_endpoint(client):
    fig, table, note, code = client.predict("200,200,200,200,200,5,5,200,200,200", 10, "oversample",
                                            api_name="/resample")
    rows = {r[0]: r for r in table["data"]}
    assert set(rows) == {"none", "oversample", "bootstrap", "smote"}
    assert rows["none"][1] == 1610 and rows["smote"][1] == 2000 and rows["bootstrap"][1] == 2000
    assert "WeightedRandomSampler" in code


def test_imagenet_model_offline_is_explained_before_any_data_is_loaded(client):
    with pytest.raises(Exception, match="offline|cannot be reached|not in the local cache"):
        client.predict(model="resnet18", api_name="/finetune")
    with pytest.raises(Exception, match="needs a download|internet"):     # from the job: the data loads there
        client.predict(target="CIFAR-10", api_name="/finetune")


def test_data_tab_augmentation_feeds_fine_tuning():
    from types import SimpleNamespace

    from ui.data import augment
    from ui.finetune_inputs import data_tab_settings

    req = SimpleNamespace(session_hash="s-1")
    augment(None, resize=0, crop_size=28, crop_padding=3, padding_mode="edge", rotation=7, hflip_p=0.0,
            example="MNIST test digit #0", n_draws=1, request=req)
    s = data_tab_settings(req)
    assert s["crop_padding"] == 3 and s["padding_mode"] == "edge" and s["rotation"] == 7
    assert data_tab_settings(SimpleNamespace(session_hash="other"))["crop_padding"] == 2  # default for others
    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import FinetuneConfig

    cfg = FinetuneConfig(augment="data-tab", augment_settings=s, max_steps=2, stage2_epochs=0, batch_size=16)
    res = run_finetune(cfg, load_target(cfg), device="cpu")
    assert res.stages[0]["steps"] == 2


@pytest.mark.slow
def test_resume_in_browser_draws_curves_and_a_finished_checkpoint_says_so(page, tmp_path):
    import threading

    from tests.conftest import ARTIFACTS
    from training.finetuning.finetune import load_target, run_finetune, save_result_checkpoint
    from training.finetuning.finetune_config import FinetuneConfig

    cfg = FinetuneConfig(max_steps=6, stage2_epochs=0)
    data = load_target(cfg)
    stop = threading.Event()
    half = run_finetune(cfg, data, on_step=lambda s, i: stop.set() if i.step == 3 else None, stop=stop, device="cpu")
    part = save_result_checkpoint(half, str(tmp_path / "half.safetensors"))
    done = save_result_checkpoint(run_finetune(cfg, data, device="cpu"), str(tmp_path / "done.safetensors"))
    open_tab(page, "Fine-tune")
    page.get_by_text("Resume from a checkpoint / publish to the Hub").click()
    page.locator("#ft-ckpt-in input[type=file]").set_input_files(done)
    page.locator("#ft-resume").click()
    page.wait_for_function("document.querySelector('#ft-resume-message')?.innerText.includes('already finished')",
                           timeout=60_000)             # beside the Resume button, as the checkpoint's own words
    assert "CheckpointError" not in page.locator("#ft-resume-message").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "finetune_resume_finished.png"), full_page=True)
    assert "Error" not in page.locator("#ft-metrics").inner_text()
    page.locator("#ft-ckpt-in button[aria-label='Clear']").first.click()
    page.locator("#ft-ckpt-in input[type=file]").set_input_files(part)
    page.locator("#ft-resume").click()
    page.wait_for_function("document.querySelector('#ft-metrics').innerText.includes('Test accuracy')",
                           timeout=180_000)
    assert "6 steps" in page.locator("#ft-metrics").inner_text()          # resumed at step 3, ran to 6
    assert not page.locator("#ft-resume-message").is_visible()   # no stale note (the status box is hidden)
    for plot in ("#ft-loss", "#ft-acc"):
        page.wait_for_selector(f"{plot} canvas, {plot} svg", timeout=30_000)
    page.wait_for_timeout(1500)            # let the charts finish drawing before the screenshot
