"""The sandbox evaluator: torch as the reference for values and gradients, a payload list of escapes and
resource bombs (each refused or bounded), and hypothesis fuzzing of random programs (never a crash or hang)."""
from __future__ import annotations

import contextlib
import signal
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground import codegen, presets, programs
from playground.evaluator import SandboxError, UserCodeError, parse
from playground.interpreter import Interpreter


def run(code: str, **env) -> Interpreter:
    it = Interpreter(env=dict(env))
    it.run(code)
    return it


# ---- torch as the reference (micrograd's test style) ----------------------------------------------------
VALUE_CASES = [
    ("a = torch.ones(2, 3)\nb = torch.arange(6.0).view(2, 3)\nr = a + b * 2",
     lambda: torch.ones(2, 3) + torch.arange(6.0).view(2, 3) * 2),
    ("a = torch.arange(6.0).view(2, 3)\nr = torch.mm(a, a.T)",
     lambda: torch.mm(torch.arange(6.0).view(2, 3), torch.arange(6.0).view(2, 3).T)),
    ("a = torch.arange(6.0).view(2, 3)\nr = (a ** 2 > 3).float().sum(dim=1)",
     lambda: (torch.arange(6.0).view(2, 3) ** 2 > 3).float().sum(dim=1)),
    ("col = torch.arange(3.0).view(3, 1)\nr = col + torch.arange(4.0)",
     lambda: torch.arange(3.0).view(3, 1) + torch.arange(4.0)),
    ("x = torch.arange(12).view(3, 4)\nr = x[1:, ::2]", lambda: torch.arange(12).view(3, 4)[1:, ::2]),
    ("x = torch.arange(12).view(3, 4)\nr = x[x % 2 == 0]", lambda: torch.arange(12)[torch.arange(12) % 2 == 0]),
    ("x = torch.arange(12.0).view(3, 4)\nr = x.max(dim=1).values - x.mean()",
     lambda: torch.arange(12.0).view(3, 4).max(dim=1).values - torch.arange(12.0).mean()),
    ("x = torch.tensor([1.7, -2.2, 3.9])\nr = x.int()", lambda: torch.tensor([1.7, -2.2, 3.9]).int()),
    ("x = torch.zeros(2, 2)\nx[0, 1] = 5\nx += 1\nr = x", lambda: torch.tensor([[1.0, 6.0], [1.0, 1.0]])),
    ("r = torch.einsum('ij,jk->ik', torch.eye(2), torch.ones(2, 3))", lambda: torch.ones(2, 3)),
    ("r = 3 if 2 > 1 and not False else 4", lambda: 3),
    ("a, b = torch.ones(2, 2)\nr = a + b", lambda: torch.full((2,), 2.0)),
]


@pytest.mark.parametrize("code,reference", VALUE_CASES, ids=[c.splitlines()[-1][:40] for c, _ in VALUE_CASES])
def test_values_equal_plain_torch(code, reference):
    got, want = run(code).env["r"], reference()
    if isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert torch.equal(got, want)
    else:
        assert got == want


GRAD_CASES = [
    ("x = torch.tensor(2.0, requires_grad=True)\ny = torch.sin(x ** 2)\ny.backward()", ["x"],
     lambda x: torch.sin(x ** 2)),
    ("w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)\nb = torch.tensor(0.5, requires_grad=True)\n"
     "out = (w * torch.tensor([2.0, 1.0, -1.0]) + b).relu().sum()\nout.backward()", ["w", "b"],
     lambda w, b: (w * torch.tensor([2.0, 1.0, -1.0]) + b).relu().sum()),
    ("z = torch.tensor([[2.0, 0.5, -1.0]], requires_grad=True)\nloss = F.cross_entropy(z, torch.tensor([0]))\n"
     "loss.backward()", ["z"], lambda z: torch.nn.functional.cross_entropy(z, torch.tensor([0]))),
    ("a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)\nb = torch.tensor([0.5, -1.0], "
     "requires_grad=True)\ny = (a @ b).tanh().pow(2).mean()\ny.backward()", ["a", "b"],
     lambda a, b: (a @ b).tanh().pow(2).mean()),
]


@pytest.mark.parametrize("code,leaves,reference", GRAD_CASES, ids=[str(i) for i in range(len(GRAD_CASES))])
def test_gradients_equal_plain_torch(code, leaves, reference):
    it = run(code)
    mine = [it.env[n] for n in leaves]
    theirs = [t.detach().clone().requires_grad_(True) for t in mine]
    reference(*theirs).backward()
    for m, t in zip(mine, theirs):
        assert torch.allclose(m.grad, t.grad, atol=1e-6), (m.grad, t.grad)


def test_net_training_matches_the_plain_pytorch_script():
    """The Train button's losses equal those of the generated plain script run by real Python."""
    r = programs.run_autograd(presets.NET, lr=0.1, steps=5)
    script = codegen.plain_code(presets.NET, "cpu", lr=0.1, steps=5, loss_name="loss")
    scope: dict = {}
    exec(compile(script, "plain.py", "exec"), scope)  # our own generated script for a preset: trusted
    assert r["error"] is None and len(r["losses"]) == 5
    assert r["losses"] == pytest.approx(scope["losses"], rel=1e-6)
    assert r["losses"][-1] < r["losses"][0]
    names = [row[0] for row in r["step_rows"]]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_tutorial_mm_shape_error_is_pytorchs_message():
    r = programs.run_tensors(presets.TENSOR_PRESETS["mm: the tutorial's shape error"])
    assert "Error on line 4" in r["error"] and "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)" in r["error"]
    fixed = programs.run_tensors(presets.TUTORIAL_2_1)
    assert fixed["error"] is None
    assert "d: shape (2, 2)" in fixed["text"] and "g: shape (6,)" in fixed["text"]
    assert [row[1] for row in fixed["rows"]] == list("abcdefgh")


# ---- escapes: each is refused ---------------------------------------------------------------------------
ESCAPES = [
    "().__class__.__bases__[0].__subclasses__()",
    "torch.ones(1).__class__.__mro__",
    "x = torch.ones(1)\nx.grad_fn.__class__",
    "print.__self__",
    "torch.__builtins__",
    "torch._C._get_tracing_state()",
    "torch.ops.aten.ones([1])",
    "torch.load('/etc/passwd')",
    "torch.save(torch.ones(1), '/tmp/pwned.pt')",
    "torch.from_file('/etc/passwd', size=10)",
    "torch.hub.load('x/y', 'z')",
    "torch.utils.cpp_extension.load_inline('x', '')",
    "torch.jit.script",
    "torch.compile",
    "torch.library",
    "torch.Tensor",
    "torch.set_default_device('meta')",
    "torch.ones(3).numpy().tofile('/tmp/pwned')",
    "torch.ones(3).apply_(print)",
    "torch.ones(3, requires_grad=True).register_hook(print)",
    "torch.ones(3).storage()",
    "torch.ones(3).untyped_storage()",
    "torch.ones(3).data_ptr()",
    "torch.ones(3).set_(torch.ones(9))",
    "x = torch.ones(1, requires_grad=True) * 2\nx.grad_fn.next_functions",
    "x = torch.ones(1, requires_grad=True) * 2\nx.grad_fn.register_hook(print)",
    "x = torch.ones(1, requires_grad=True) * 2\nx.grad_fn(torch.ones(1))",
    "net = nn.Linear(2, 2)\nnet.parameters().gi_frame.f_globals",
    "net = nn.Linear(2, 2)\nnet.apply(print)",
    "net = nn.Linear(2, 2)\nnet.register_forward_hook(print)",
    "net = nn.Linear(2, 2)\nnet.load_state_dict({})",
    "opt = optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1)\nopt.param_groups",
    "opt = optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1)\nopt.step(nn.ReLU())",
    "(x for x in (1,)).gi_frame",
    "[x for x in (1,)]",
    "lambda: 0",
    "f'{torch}'",
    "'{0.__class__}'.format(torch.ones(1))",
    "'%s' % torch",
    "getattr(torch, 'load')",
    "eval('1')",
    "exec('import os')",
    "open('/etc/passwd')",
    "__import__('os')",
    "import os",
    "from os import system",
    "type(torch.ones(1))",
    "globals()",
    "vars()",
    "breakpoint()",
    "f = torch.ones\nf.fn",
    "m = torch.ones(1).add\nm.obj",
    "torch.device('cpu').type",
    "torch.ones(2, out=torch.ones(2))",
    "torch.ones(2).to(**{'device': 'cpu'})",
    "torch.ones(2).to(*['cpu'])",
    "def f(): pass",
    "class A: pass",
    "for i in (1,): pass",
    "while True: pass",
    "with torch.no_grad(): pass",
    "try:\n  pass\nexcept Exception: pass",
    "async def f(): pass",
    "x = 1\ndel x",
    "global x",
    "(y := 1)",
    "torch.ones(1).__reduce_ex__(2)",
    "b'bytes'",
    "nn.Module",
    "F.torch",
    "optim.Optimizer",
]


@pytest.mark.parametrize("code", ESCAPES)
def test_escape_is_refused(code, tmp_path):
    with pytest.raises((SandboxError, UserCodeError)) as info:
        run(code)
    if isinstance(info.value, UserCodeError):  # only "that name does not exist here" kinds of failure
        assert isinstance(info.value.exc, (NameError, TypeError)), info.value


# ---- resource bombs: each is refused before it allocates or computes ----------------------------------
BOMBS = [
    "2 ** 2 ** 100",
    "10 ** 10 ** 10",
    "x = 7 ** 1000\ny = x * x * x * x * x * x",
    "1 << 10 ** 9",
    "[0] * 10 ** 9",
    "'a' * 10 ** 9",
    "a = [0] * 99999\nb = a + a",
    "torch.ones(10 ** 6, 10 ** 6)",
    "torch.zeros(2 ** 40)",
    "torch.arange(10 ** 12)",
    "torch.linspace(0, 1, steps=10 ** 10)",
    "torch.ones(4000, 4000).repeat(100, 100)",
    "torch.ones(10).expand(10 ** 9, 10)",
    "torch.ones(5000).outer(torch.ones(5000))",
    "torch.ones(5000, 1) + torch.ones(1, 5000)",
    "torch.ones(1000, 1000)[[0] * 100000]",
    "nn.Linear(100000, 100000)",
    "nn.Embedding(10 ** 8, 100)",
    "net = nn.Linear(1, 4000)\nnet(torch.ones(10000, 1))",
    "torch.ones(1000, 1000).tolist()",
    "torch.ones(10 ** 6).double().double().to(torch.complex64).view(-1, 1) * torch.ones(1, 10 ** 3)",
    "\n".join(f"x{i} = torch.ones(4096, 4096)" for i in range(40)),
    "(" * 300 + "1" + ")" * 300,
    "-" * 3000 + "1",
    "x = " + "[" * 100 + "]" * 100,
    "a = 1\n" * 200,
    "x = 1 + " * 1000 + "1",
]


@pytest.mark.parametrize("code", BOMBS, ids=[b[:40] for b in BOMBS])
def test_bomb_is_refused_quickly(code):
    t0 = time.perf_counter()
    with pytest.raises(SandboxError):
        run(code)
    assert time.perf_counter() - t0 < 30.0   # generous: a loaded CI machine; bench_sandbox times it


def test_data_dependent_ops_are_bounded_by_their_input():
    it = run("x = torch.arange(10)\ny = x[x > 4]\nz = x.nonzero()\nu = torch.unique(x % 3)")
    assert it.env["y"].tolist() == [5, 6, 7, 8, 9] and it.env["u"].tolist() == [0, 1, 2]


def test_input_length_cap():
    with pytest.raises(SandboxError, match="characters"):
        parse("1 + 1\n" * 1000)


# ---- fuzzing: random programs never crash the evaluator and never hang ----------------------------------
NAMES = ["a", "b", "x", "torch", "nn", "F", "optim", "device", "print", "len", "max", "__class__", "_x", "eval"]
ATTRS = ["ones", "rand", "mm", "view", "sum", "T", "grad", "backward", "shape", "relu", "Linear", "SGD",
         "__class__", "__subclasses__", "gi_frame", "load", "numpy", "storage", "apply_", "_C", "f_globals",
         "register_hook", "parameters", "step", "values", "item", "to", "reshape", "format", "repeat"]
SMALL = st.one_of(st.integers(-3, 6), st.sampled_from(["10 ** 9", "2 ** 100", "-1", "0.5", "True", "None",
                                                       "'s'", "...", "(2, 3)", "[1, 2]"]).map(str))


def _expr(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(ATTRS)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, st.lists(children, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(children, st.sampled_from(["+", "*", "**", "@", "-", ">", "/", "%", "<<", "and"]), children)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[:{t[1]}]"),
    )


EXPR = st.recursive(st.one_of(st.sampled_from(NAMES), SMALL.map(str)), _expr, max_leaves=12)
PROGRAM = st.lists(st.tuples(st.sampled_from(["a", "b", "x", ""]), EXPR), min_size=1, max_size=5).map(
    lambda lines: "\n".join(f"{n} = {e}" if n else e for n, e in
                            [("a", "torch.rand(2, 3)"), ("b", "torch.ones(3, 2, requires_grad=True)")] + lines))


# Each example takes milliseconds. One slower than DEADLINE fails and is shrunk by hypothesis; one that hangs is
# interrupted after HANG_S (SIGALRM, where there is one), so a hang fails the test instead of stalling the suite.
DEADLINE = None   # hypothesis' per-example deadline flakes on a loaded machine; HANG_S bounds a hang
HANG_S = 30.0


class _Hung(BaseException):
    """Raised by the alarm: a BaseException, so the evaluator's own error handling cannot swallow it."""


@contextlib.contextmanager
def _hang_bound(seconds: float):
    """Interrupt the block after `seconds`; pytest-timeout's alarm (the same signal) is put back afterwards."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        raise _Hung

    old_handler = signal.signal(signal.SIGALRM, expired)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    t0 = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - t0), 0.001), old_interval)


def _run_bounded(code: str) -> None:
    try:
        with _hang_bound(HANG_S):
            run(code)
    except (SandboxError, UserCodeError):
        pass
    except _Hung:
        raise AssertionError(f"no answer within {HANG_S} s") from None


@settings(max_examples=100, deadline=DEADLINE, suppress_health_check=[HealthCheck.too_slow])
@given(PROGRAM)
def test_fuzz_random_programs_never_crash_or_hang(code):
    _run_bounded(code)


@settings(max_examples=60, deadline=DEADLINE)
@given(st.text(max_size=300))
def test_fuzz_random_text_never_crashes(text):
    _run_bounded(text)


@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="no SIGALRM here: the fuzz tests have no hang bound")
def test_the_fuzz_tests_hang_bound_interrupts_a_hang_and_gives_back_the_test_timeout():
    outer = signal.getitimer(signal.ITIMER_REAL)[0]          # pytest-timeout's alarm, when it uses the signal
    t0 = time.monotonic()
    with pytest.raises(_Hung):
        with _hang_bound(0.2):
            while True:
                pass
    assert time.monotonic() - t0 < 10
    if outer:
        assert 0 < outer - signal.getitimer(signal.ITIMER_REAL)[0] < 10


def test_server_unpickles_only_plain_data_and_arrays_from_the_worker():
    """Even a worker taken over by an evaluator bug cannot make the server build arbitrary objects."""
    import multiprocessing as mp
    import os
    import pickle

    import numpy as np

    from playground.worker import _recv_reply

    a, b = mp.Pipe()
    a.send(("ok", {"values": [1, 2.5, "x", None, b"png"], "pic": np.arange(6, dtype=np.uint8).reshape(2, 3)}))
    status, payload = _recv_reply(b)
    assert status == "ok" and payload["pic"].shape == (2, 3) and payload["values"][1] == 2.5

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    a.send_bytes(pickle.dumps(("ok", Evil())))
    with pytest.raises(pickle.UnpicklingError, match="refuses"):
        _recv_reply(b)
    a.send_bytes(pickle.dumps(("ok", np.array([Evil()], dtype=object))))
    with pytest.raises(pickle.UnpicklingError, match="refuses"):
        _recv_reply(b)


def test_every_problem_is_listed_at_once_top_to_bottom():
    """The restricted language (where no OS fence exists and the app is public) names every refusal, each with
    its line, not just the first."""
    from playground.evaluator import SandboxError, parse

    code = ("import torch\nclass Net(nn.Module):\n    pass\nx = [i for i in range(3)]\nfor i in range(2):\n"
            "    y = i\nz = f'{x}'\n")
    with pytest.raises(SandboxError) as info:
        parse(code)
    lines = str(info.value).splitlines()
    assert lines[0] == "5 problems, top to bottom:"
    assert [ln.split(":")[0] for ln in lines[1:]] == ["line 1", "line 2", "line 4", "line 5", "line 7"]
    assert "classes are not allowed" in lines[2] and "f-strings" in lines[5]


# ---- the server's parse: nested too deep, and two threads at once (CPython < 3.12.4, python/cpython#106905) ------

def test_the_plain_script_of_a_program_nested_too_deep_is_the_code_as_typed():
    """The sandbox refuses it ('too nested'); the server's plain script beside the refusal must not raise."""
    for code in ("-" * 3999 + "1", "not " * 999 + "1"):
        script = codegen.plain_code(code, "cpu", show_names=True)
        assert code in script


RACE = """
import ast, sys, threading
sys.path.insert(0, {root!r})
from core import pyast
sys.setswitchinterval(1e-6)
code = open({source!r}).read()
clashes = []

class Cycle:
    def __del__(self):                      # a finaliser run by a collection in the middle of another's parse
        for _ in range(100):
            pass

def garbage():
    for _ in range(60000):
        a, b = Cycle(), Cycle()
        a.b, b.a = b, a

def parse_many():
    for _ in range(100):
        try:
            pyast.parse(code)
        except SystemError as e:
            clashes.append(str(e))

threads = [threading.Thread(target=garbage)] + [threading.Thread(target=parse_many) for _ in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(clashes), clashes[:1])
"""


def test_parsing_in_three_threads_at_once_never_clashes(tmp_path):
    """Without core.pyast's lock this fails on CPython 3.11 ('AST constructor recursion depth mismatch')."""
    import subprocess
    import sys
    from pathlib import Path

    import core.pyast

    root = Path(core.pyast.__file__).resolve().parents[1]
    script = tmp_path / "race.py"
    script.write_text(RACE.format(root=str(root), source=str(root / "playground" / "evaluator.py")))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "0", out.stdout


def test_a_clash_with_a_librarys_own_parse_is_retried(monkeypatch):
    import ast

    from core import pyast

    real, calls = ast.parse, []

    def clashing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=15, after=3)")
        return real(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", clashing)
    assert isinstance(pyast.parse("x = 1"), ast.Module) and len(calls) == 2
    monkeypatch.setattr(ast, "parse", lambda *a, **k: (_ for _ in ()).throw(SystemError("something else")))
    with pytest.raises(SystemError, match="something else"):
        pyast.parse("x = 1")
