"""Export a run (training/finetuning/export.py, ui/export_run.py): the zip, its script in a fresh folder on one
process and under torchrun (2 processes, gloo), its outputs back in the app, bad input, the endpoint and the button."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, open_tab

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
# The project's top-level modules (pyproject.toml). Installed (pip install -e .), they import from anywhere.
PROJECT_MODULES = ("app", "core", "zoo", "training", "playground", "jobs", "ui", "look_inside", "tests")


@functools.cache
def _without_the_project() -> str:
    """A folder of stubs that fail to import, one per project module: first on the exported run's path, so
    the run is checked to need nothing from this project, installed or not."""
    folder = Path(tempfile.mkdtemp(prefix="no-project-"))
    for name in PROJECT_MODULES:
        (folder / f"{name}.py").write_text(f"raise ImportError('the exported run imported {name}, a module of "
                                           f"this project: it must run on its own')\n")
    return str(folder)


def _env() -> dict:
    """None of this project importable (not even installed), offline, and cheap on a shared 2-core machine."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=_without_the_project())
    return env


def _unzip(zip_path: str, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
        top = {n.split("/")[0] for n in zf.namelist()}
    assert len(top) == 1
    return dest / top.pop()


def _run(cmd: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _final_json(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, stdout   # rank 0 prints exactly one JSON line; the other ranks print nothing
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tab's default run, exported and unzipped in a folder outside the checkout."""
    from training.finetuning.export import build_export
    from training.finetuning.finetune_config import FinetuneConfig

    base = tmp_path_factory.mktemp("export")
    assert not str(base).startswith(str(ROOT))
    path = build_export(FinetuneConfig(), str(base))
    return path, _unzip(path, base / "unzipped")


@pytest.fixture(scope="module")
def ddp_run(exported):
    """torchrun --standalone --nproc_per_node=2, 2 steps per stage, stopped after 3 (like the tab's Cancel) so the
    checkpoint has something left to resume."""
    _, folder = exported
    out = folder.parent / "out-ddp"
    p = _run(TORCHRUN + ["--standalone", "--nproc_per_node=2", "train.py", "--max-steps", "2", "--stop-after", "3",
                         "--out", str(out)], folder)
    assert p.returncode == 0, p.stderr[-3000:]
    return _final_json(p.stdout), out, p.stderr


# ------------------------------------------------------------------ the zip is the project's own source

def test_zip_layout_config_and_pins(exported):
    from training.finetuning.finetune_config import FinetuneConfig

    path, folder = exported
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert {"train.py", "config.json", "requirements.txt", "README.md", "weights/resnet_digits.safetensors",
            "playground_src/digits.py", "playground_src/recipe.py", "playground_src/checkpoint.py"} <= names
    conf = json.loads((folder / "config.json").read_text())
    assert conf["run"] == FinetuneConfig().to_dict()
    assert conf["model"]["architecture"] == "ResNetDigits"
    project = set((ROOT / "requirements.txt").read_text().split())
    pins = (folder / "requirements.txt").read_text().split()
    assert pins and all(p in project for p in pins), pins          # exact pins, the project's own
    assert {p.split("==")[0] for p in pins} >= {"torch", "torchvision", "safetensors", "scikit-learn"}
    for dest, src in __import__("training.finetuning.export", fromlist=["VERBATIM"]).VERBATIM.items():
        assert (folder / "playground_src" / dest).read_text() == (ROOT / src).read_text()   # copied, not retyped
    assert (folder / "train.py").read_text() == (ROOT / "training/finetuning/export_template/train.py").read_text()


def test_every_package_the_app_imports_is_declared_and_pinned():
    """Each third-party module the app's own code imports (app.py and its packages, function-level imports too)
    comes from a distribution that pyproject.toml declares and requirements.txt pins at the installed version
    (issue #26 item 10: filelock, scipy and pandas were imported without being declared)."""
    import ast
    import importlib.metadata as md
    import tomllib

    from packaging.requirements import Requirement

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    ours = set(setuptools["py-modules"]) | {p.rstrip("*") for p in setuptools["packages"]["find"]["include"]}
    files = [ROOT / f"{m}.py" for m in setuptools["py-modules"]] + [
        p for pkg in ours - set(setuptools["py-modules"]) for p in (ROOT / pkg).rglob("*.py")
        if "export_template" not in p.parts]
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    names -= set(sys.stdlib_module_names) | ours | set(PROJECT_MODULES)
    names.discard("spaces")                  # ZeroGPU's package: present on such a Space only (ui/gpu.py)
    dists = md.packages_distributions()
    assert names and not [n for n in names if n not in dists], "imported but not installed"
    declared = {Requirement(d).name.lower() for d in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            pins[req.name.lower()] = str(req.specifier)
    for name in sorted(names):
        dist = dists[name][0].lower().replace("_", "-")
        assert dist in declared, f"{name} ({dist}) is imported but not in pyproject.toml's dependencies"
        assert pins.get(dist) == f"=={md.version(dist)}", f"{dist}: requirements.txt pin vs installed"


def test_space_short_description_fits_the_hub():
    """The Hub refuses a Space's README whose short_description is over 60 characters."""
    front = (ROOT / "README.md").read_text().split("---")[1]
    (line,) = [x for x in front.splitlines() if x.startswith("short_description:")]
    assert 0 < len(line.split(":", 1)[1].strip().strip('"')) <= 60


def test_the_project_is_not_importable_where_the_exported_run_runs(exported):
    _, folder = exported
    for name in PROJECT_MODULES:
        p = _run([sys.executable, "-c", f"import {name}"], folder)
        assert p.returncode == 1 and "it must run on its own" in p.stderr, (name, p.stderr[-500:])


def test_imagenet_models_name_torchvision_and_the_hub(tmp_path):
    """No 45-550 MB download in the zip: torchvision's constructor, the Hub file and its key map."""
    from training.finetuning.export import build_export, recipe_source
    from training.finetuning.finetune_config import FinetuneConfig

    for name, km in (("resnet18", None), ("vgg16", "timm_vgg_to_torchvision")):
        with zipfile.ZipFile(build_export(FinetuneConfig(model=name), str(tmp_path))) as zf:
            conf = json.loads(zf.read(f"{name}-digits/config.json"))
            reqs = zf.read(f"{name}-digits/requirements.txt").decode()
            assert not any(n.endswith(".safetensors") for n in zf.namelist())
        m = conf["model"]
        assert m["torchvision"] == name and m["key_map"] == km and m["input_size"] == [3, 224, 224]
        assert m["weights"]["hub_repo"] and m["weights"]["hub_file"] == "model.safetensors"
        assert "huggingface-hub==" in reqs
    assert "def timm_vgg_to_torchvision(" in recipe_source()


def test_recipe_is_generated_from_the_trainer_and_complete():
    import inspect

    from training import trainer
    from training.finetuning import finetune, transfer
    from training.finetuning.export import recipe_source, undefined_names

    src = recipe_source()
    for fn in (transfer.parts_of, transfer.replace_head, transfer.freeze, finetune._stage_config,
               trainer.make_optimizer, trainer.make_scheduler, trainer.set_train_mode):
        assert inspect.getsource(fn) in src
    assert undefined_names(src) == set()
    # the check can fail: a copied function that needs a name recipe.py lacks
    assert undefined_names(src + "\ndef extra():\n    return get_device()\n") == {"get_device"}


def test_script_knows_every_training_setting():
    """A new TrainConfig or FinetuneConfig field is a behaviour the exported loop does not have yet."""
    from dataclasses import fields

    from training.finetuning.export import SCRIPT_TRAIN_FIELDS
    from training.finetuning.finetune_config import FinetuneConfig
    from training.trainer import TrainConfig

    assert {f.name for f in fields(TrainConfig)} == SCRIPT_TRAIN_FIELDS
    src = (ROOT / "training/finetuning/export_template/train.py").read_text()
    for f in fields(FinetuneConfig):
        if f.name not in ("model", "stage1_epochs", "stage2_epochs", "stage1_lr", "stage2_lr", "batch_size",
                          "optimizer", "amp", "eval_every", "max_steps"):   # these reach it through _stage_config
            assert f"run.{f.name}" in src, f"train.py never reads {f.name}"


CHECK = r"""
import json, sys, torch
import train
from playground_src import digits
cfg = train.load_config("config.json")
run = train.run_settings(cfg, train.parse_args([]))
data = train.builtin_data(run, cfg["model"]["input_size"])
out = {"shapes": {n: {k: list(v.shape) for k, v in getattr(digits, n)().state_dict().items()}
                  for n in ("ResNetDigits", "VGGDigits", "AlexNetDigits")},
       "train": [list(data.train_x.shape), float(data.train_x.double().sum()), data.train_y.tolist()[:50]],
       "test": [list(data.test_x.shape), float(data.test_x.double().sum())]}
torch.manual_seed(0)
model, parts = train.build_model(cfg["model"], 10, 0, pretrained=True, weights=None)
x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
out["logits"] = model.eval()(x).tolist()
print(json.dumps(out))
"""


@pytest.mark.app   # runs the exported script in a fresh process
def test_exported_model_and_data_equal_the_apps(exported):
    """In the fresh folder: the architectures' keys and shapes, the logits of the starting model with its new
    head, and the data split are the app's."""
    from training.finetuning.finetune import build_model, load_target
    from training.finetuning.finetune_config import FinetuneConfig
    from zoo.digits import AlexNetDigits, ResNetDigits, VGGDigits

    _, folder = exported
    p = _run([sys.executable, "-c", CHECK], folder)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout)
    for cls in (ResNetDigits, VGGDigits, AlexNetDigits):
        assert got["shapes"][cls.__name__] == {k: list(v.shape) for k, v in cls().state_dict().items()}
    cfg = FinetuneConfig()
    data = load_target(cfg)
    assert got["train"][0] == list(data.train_x.shape) and got["train"][2] == data.train_y.tolist()[:50]
    assert got["train"][1] == pytest.approx(float(data.train_x.double().sum()), rel=1e-9)
    assert got["test"][1] == pytest.approx(float(data.test_x.double().sum()), rel=1e-9)
    model, _ = build_model(cfg, 10)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(torch.tensor(got["logits"]), model.eval()(x), atol=1e-5)


# ------------------------------------------------------------------ torchrun, 2 processes, gloo

@pytest.mark.slow
@pytest.mark.app   # torchrun: the exported script in 2 processes
def test_torchrun_two_processes_agree(ddp_run):
    res, out, log = ddp_run
    assert res["world_size"] == 2 and res["backend"] == "gloo" and res["device"] == "cpu"
    assert res["steps"] == 3 and res["stopped"] is True
    assert res["ranks_agree"] is True and len(res["param_checksum"]) == 3
    assert res["global_batch"] == 64 and res["per_process_batch"] == 32
    assert 0 <= res["test_accuracy"] <= 100 and res["images_per_second"] > 0
    assert (out / "model.safetensors").exists() and (out / "checkpoint.safetensors").exists()
    assert log.count("2 process(es) on cpu (gloo)") == 1        # logs from rank 0 only


@pytest.mark.slow
@pytest.mark.app   # uses the torchrun run (ddp_run)
def test_ddp_outputs_load_in_look_inside_and_resume_in_the_tab(ddp_run):
    from training.checkpoint import load_checkpoint
    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import check_resumable, config_from_checkpoint
    from zoo import get_spec
    from look_inside.weights import load_checkpoint as look_inside_load

    _, out, _ = ddp_run
    model = look_inside_load(get_spec("resnet_digits"), str(out / "model.safetensors"))
    assert model.fc.out_features == 10
    ck = load_checkpoint(str(out / "checkpoint.safetensors"))
    cfg = config_from_checkpoint(ck)
    check_resumable(ck.meta, {k: ck.train_state[k] for k in ("step", "total_steps")})
    assert ck.meta["stage"] == 2 and ck.train_state["step"] == 1 and ck.train_state["perm"] is not None
    res = run_finetune(cfg, load_target(cfg), resume=ck, device="cpu")
    assert [(s["stage"], s["steps"]) for s in res.stages] == [(2, 2)]   # the one step left, then done


@pytest.mark.slow
@pytest.mark.app   # torchrun: the exported script in 2 processes
def test_torchrun_resumes_its_checkpoint(exported, ddp_run):
    _, folder = exported
    _, out, _ = ddp_run
    p = _run(TORCHRUN + ["--standalone", "--nproc_per_node=2", "train.py", "--resume",
                         str(out / "checkpoint.safetensors"), "--out", str(folder.parent / "out-resumed")], folder)
    assert p.returncode == 0, p.stderr[-3000:]
    res = _final_json(p.stdout)
    assert res["world_size"] == 2 and res["ranks_agree"] and not res["stopped"]
    assert [(s["stage"], s["steps"]) for s in res["stages"]] == [(2, 2)]


@pytest.mark.slow
@pytest.mark.app   # torchrun: 2 processes
def test_rank_check_fails_when_parameters_differ(exported, tmp_path):
    """The end-of-run check is real: two processes whose parameters differ are told so."""
    _, folder = exported
    script = tmp_path / "desync.py"
    script.write_text(f"""
import os, sys, torch, torch.distributed as dist
sys.path.insert(0, {str(folder)!r})
import train
dist.init_process_group("gloo")
torch.manual_seed(0)
m = torch.nn.Linear(3, 2)
torch.nn.init.constant_(m.weight, 1.0 + (dist.get_rank() == 1) * 1e-6)
ok, _ = train.ranks_agree(m, dist.get_world_size(), torch.device("cpu"))
torch.nn.init.constant_(m.weight, 1.0)
ok2, _ = train.ranks_agree(m, dist.get_world_size(), torch.device("cpu"))
print(f"rank {{dist.get_rank()}} differ={{not ok}} same={{ok2}}")
dist.destroy_process_group()
""")
    p = _run(TORCHRUN + ["--standalone", "--nproc_per_node=2", str(script)], tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.count("differ=True same=True") == 2, p.stdout


# ------------------------------------------------------------------ one process: data folders and bad input

def _image_folder(root: Path, per_class: int = 6) -> Path:
    from PIL import Image

    from training.data.datasets import digits

    split = digits()
    for c in ("0", "1", "7"):
        d = root / c
        d.mkdir(parents=True)
        idx = (split.train_y == int(c)).nonzero().flatten()[:per_class]
        for i in idx.tolist():
            Image.fromarray((split.train_x[i, 0] * 255).byte().numpy()).save(d / f"{i}.png")
    return root


@pytest.mark.slow
@pytest.mark.app   # runs the exported script in a fresh process
def test_image_folder_is_streamed_with_a_dataloader(exported, tmp_path):
    _, folder = exported
    data = _image_folder(tmp_path / "imgs")
    p = _run([sys.executable, "train.py", "--data", str(data), "--max-steps", "1", "--batch-size", "8",
              "--workers", "1", "--out", str(tmp_path / "out")], folder)
    assert p.returncode == 0, p.stderr[-3000:]
    res = _final_json(p.stdout)
    assert res["world_size"] == 1 and res["steps"] == 2 and "streamed by a DataLoader" in p.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["classes"] == ["0", "1", "7"]
    assert sum(map(sum, metrics["confusion"])) == 3  # round(0.2 * 6) per class


@pytest.mark.app   # runs the exported script in a fresh process
def test_missing_config_is_a_clear_error(exported, tmp_path):
    _, folder = exported
    p = _run([sys.executable, str(folder / "train.py"), "--config", str(tmp_path / "nope.json")], tmp_path)
    assert p.returncode == 2
    assert "config not found" in p.stderr and "Traceback" not in p.stderr


BAD = r"""
import json, sys, train
msgs = {}
for name, argv in json.loads(sys.argv[1]).items():
    try:
        train.main(argv)
        msgs[name] = "no error"
    except train.RunError as exc:
        msgs[name] = str(exc)
print(json.dumps(msgs))
"""


@pytest.mark.app   # runs the exported script in a fresh process
def test_bad_data_folder_and_foreign_checkpoints_are_refused(exported, tmp_path):
    from training.finetuning.finetune import load_target, run_finetune, save_result_checkpoint
    from training.finetuning.finetune_config import FinetuneConfig

    _, folder = exported
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"not a folder of classes")
    cfg = FinetuneConfig(model="vgg_digits", max_steps=1, stage2_epochs=0)
    vgg_ckpt = save_result_checkpoint(run_finetune(cfg, load_target(cfg), device="cpu"),
                                      str(tmp_path / "vgg.safetensors"))
    pickle = tmp_path / "evil.safetensors"
    torch.save({"model": torch.zeros(2)}, pickle)
    cases = {"flat": ["--data", str(tmp_path / "flat")], "nodir": ["--data", str(tmp_path / "missing")],
             "vgg": ["--resume", vgg_ckpt], "pickle": ["--resume", str(pickle)],
             "epochs": ["--epochs", "two"]}
    p = _run([sys.executable, "-c", BAD, json.dumps(cases)], folder)
    assert p.returncode == 0, p.stderr[-3000:]
    msgs = json.loads(p.stdout)
    assert "is not an ImageFolder" in msgs["flat"] and "<class_name>" in msgs["flat"]
    assert "not a directory" in msgs["nodir"]
    assert "a checkpoint of 'vgg_digits'; this export trains 'resnet_digits'" in msgs["vgg"]
    assert "not a safetensors file" in msgs["pickle"]
    assert "--epochs takes N or N1,N2" in msgs["epochs"]


# ------------------------------------------------------------------ the app: endpoint, button, signature

def test_export_run_takes_finetunes_parameters():
    import inspect

    from ui.export_run import export_run
    from ui.finetune import finetune

    a, b = inspect.signature(export_run), inspect.signature(finetune)
    assert [(p.name, p.default) for p in a.parameters.values()] == [(p.name, p.default) for p in b.parameters.values()]


def test_export_run_endpoint_returns_the_zip(client, tmp_path):
    path = client.predict(api_name="/export_run")
    assert str(path).endswith(".zip")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        conf = json.loads(zf.read("resnet_digits-digits/config.json"))
    assert "resnet_digits-digits/train.py" in names and conf["run"]["batch_size"] == 64
    path = client.predict(model="vgg_digits", batch_size=128, unfreeze="last1", api_name="/export_run")
    with zipfile.ZipFile(path) as zf:
        conf = json.loads(zf.read("vgg_digits-digits/config.json"))
        assert "vgg_digits-digits/weights/vgg_digits.safetensors" in zf.namelist()
    assert conf["model"]["architecture"] == "VGGDigits" and conf["run"]["unfreeze"] == "last1"
    with pytest.raises(Exception, match="(?i)learning rates must be"):  # our validation, as /finetune's
        client.predict(stage1_lr=5.0, api_name="/export_run")


@pytest.mark.slow
def test_tab_resume_and_look_inside_accept_the_scripts_files(client, ddp_run):
    """Through the app itself: the Fine-tune tab's Resume and Look inside's checkpoint comparison."""
    from gradio_client import handle_file

    _, out, _ = ddp_run
    outs = client.submit(handle_file(str(out / "checkpoint.safetensors")), None, api_name="/resume").result(timeout=300)
    assert any("Test accuracy" in str(o) for o in outs)
    from ui.look_inside import CMP_UPLOAD

    cmp = client.predict("resnet_digits", CMP_UPLOAD, 0, handle_file(str(out / "model.safetensors")), "",
                         api_name="/compare_checkpoints")
    assert "uploaded file" in str(cmp[3])


def test_export_button_in_browser(page):
    open_tab(page, "Fine-tune")
    page.locator("#ft-export").click()
    link = page.locator("#ft-export-file a[href*='resnet_digits-digits-torchrun.zip']").first
    link.wait_for(timeout=60_000)
    assert "MB" in link.inner_text()                       # the file's size: a real zip of about 1 MB
    assert "torchrun" in page.locator("#ft-export-note").inner_text()
