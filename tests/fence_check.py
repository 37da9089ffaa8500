"""A hostile suite for the sandbox's fence (issue #22): programs that try to read secrets and other visitors'
files, reach the network, write outside their folder, start processes, trace or signal other processes, load a
malicious pickle, and so on. Each prints ESCAPED (or leaves a marker file outside its folder) if it got through.

Used by tests/test_fence.py in-process (as whoever runs the tests: root in CI) and, as a normal user, as a
script: `python -m tests.fence_check WORK_DIR [--unfenced]` prints the outcomes as JSON.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CANARY = "hf_CANARYserverOwnerToken000000000"

GUARD = "try:\n{body}\nexcept BaseException as exc:\n    print('BLOCKED', type(exc).__name__, exc)\n"

PAYLOADS = {
    # secrets: the server's environment, its saved Hub login, /proc of other processes
    "env_token": "import os\nif '{canary}' in repr(dict(os.environ)): print('ESCAPED')\nelse: print('clean env')",
    "saved_login": "print(open({token_file!r}).read()); print('ESCAPED')",
    "proc_environ_server": "d = open('/proc/{server_pid}/environ', 'rb').read()\nprint('ESCAPED', len(d))",
    "proc_environ_template": "import os\nd = open(f'/proc/{{os.getppid()}}/environ', 'rb').read()\n"
                             "print('ESCAPED', len(d))",
    "proc_mem_server": "f = open('/proc/{server_pid}/mem', 'rb')\nprint('ESCAPED')",
    "proc_listing": "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\nprint('ESCAPED', len(pids))",
    "proc_cmdline_init": "print(open('/proc/1/cmdline', 'rb').read()[:20]); print('ESCAPED')",
    # files: the app's own, shipped weights, other visitors' folders and uploads, anywhere else
    "read_app_source": "print(open({app_file!r}).read()[:10]); print('ESCAPED')",
    "write_shipped_weights": "open({weights_file!r}, 'ab').write(b'x'); print('ESCAPED')",
    "read_other_visitor": "import os\nprint(os.listdir({victim!r}), open({victim_file!r}).read()); print('ESCAPED')",
    "read_other_upload": "print(open({upload_file!r}).read()); print('ESCAPED')",
    "write_tmp": "open({marker!r} + '-tmp', 'w').write('x'); print('ESCAPED')",
    "write_through_proc_root": "open('/proc/self/root' + {marker!r} + '-root', 'w').write('x'); print('ESCAPED')",
    "symlink_to_secret": "import os\nos.symlink({token_file!r}, 'link')\nprint('ESCAPED')",
    "hardlink_to_secret": "import os\nos.link({token_file!r}, 'hard')\nprint('ESCAPED')",
    # network
    "tcp_connect": "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('ESCAPED')",
    "unix_socket": "import socket\ns = socket.socket(socket.AF_UNIX)\nprint('ESCAPED')",
    "netlink_socket": "import socket\ns = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\nprint('ESCAPED')",
    # processes
    "os_system": "import os\nrc = os.system('touch ' + {marker!r} + '-system')\nimport os.path\n"
                 "print('ESCAPED' if os.path.exists({marker!r} + '-system') else f'rc {{rc}}')",
    "subprocess": "import subprocess\nsubprocess.run(['/bin/true'])\nprint('ESCAPED')",
    "exec": "import os\nos.execv('/bin/true', ['true'])",
    "fork": "import os\npid = os.fork()\nif pid == 0: os._exit(0)\nprint('ESCAPED')",
    "ctypes_fork": "import ctypes\nlibc = ctypes.CDLL(None)\npid = libc.fork()\n"
                   "if pid == 0: libc._exit(0)\nprint('ESCAPED' if pid > 0 else 'BLOCKED fork -1')",
    "ctypes_ptrace_template": "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                              "r = libc.ptrace(16, os.getppid(), 0, 0)\n"
                              "print('ESCAPED' if r == 0 else 'BLOCKED ptrace')",
    "multiprocessing": "import multiprocessing as mp\np = mp.Process(target=print)\np.start()\nprint('ESCAPED')",
    # signals
    "signal_server": "import os\nos.kill({server_pid}, 0)\nprint('ESCAPED')",
    "signal_template": "import os\nos.kill(os.getppid(), 0)\nprint('ESCAPED')",
    "setuid": "import os\nos.setuid(1 if os.getuid() == 0 else 0)\nprint('ESCAPED')",
    "capabilities": "caps = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapPrm'))]\n"
                    "print('ESCAPED' if any(int(l.split()[1], 16) for l in caps) else 'no capabilities', caps)",
    # pickle through torch.load: the payload runs (the program asked for it) but cannot leave the fence
    "pickle_torch_load": "import builtins, io, os, torch\n"
                         "class P:\n    def __reduce__(self):\n"
                         "        return (builtins.open, ({marker!r} + '-pickle', 'w'))\n"
                         "buf = io.BytesIO()\ntorch.save({{'x': P()}}, buf)\nbuf.seek(0)\n"
                         "torch.load(buf, weights_only=False)\n"
                         "print('ESCAPED' if os.path.exists({marker!r} + '-pickle') else 'BLOCKED pickle')",
    "weights_only_pickle": "import io, os, pickle, torch\n"
                           "class P:\n    def __reduce__(self):\n        return (os.getcwd, ())\n"
                           "torch.load(io.BytesIO(pickle.dumps(P())))\nprint('ESCAPED')",
}
# Payloads that harm the machine when they succeed (a forked Python, a stopped template): not run unfenced.
DANGEROUS_UNFENCED = {"fork", "ctypes_fork", "ctypes_ptrace_template", "multiprocessing", "exec", "setuid",
                      "write_shipped_weights", "capabilities"}


def context(work: Path) -> dict:
    """Files the attacks aim at: a saved login, another visitor's folder, an upload, the app's own files."""
    work.mkdir(parents=True, exist_ok=True)
    secret = work / "server-home" / "token"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(CANARY)
    victim = work / "scratch" / "victim"
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "model.pt").write_text("the victim's work")
    upload = work / "gradio" / "upload.png"
    upload.parent.mkdir(exist_ok=True)
    upload.write_text("someone's upload")
    weights = sorted((ROOT / "zoo" / "weights").glob("*.safetensors"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return {"canary": CANARY, "token_file": str(secret), "victim": str(victim), "victim_file": str(victim / "model.pt"),
            "upload_file": str(upload), "app_file": str(ROOT / "app.py"),
            "weights_file": str(weights[0]) if weights else str(ROOT / "README.md"),
            "marker": str(work / "escaped"), "server_pid": os.getpid(), "port": listener.getsockname()[1],
            "_listener": listener}


def run_suite(work: Path, fenced: bool = True, names=None) -> dict:
    """Run the payloads in a fresh template with HF_TOKEN set in our own environment; name -> outcome."""
    from playground.fork_server import ForkServer
    from playground.whole import ForkSlot, ProgramLimits, shape

    os.environ["HF_TOKEN"] = CANARY   # the server's own secret: must not reach a program
    ctx = context(work)
    server = ForkServer(work / "sandbox", fenced=fenced)
    slot = ForkSlot(server, ProgramLimits(wall_s=60, cpu_s=30), name="hostile")
    outcomes = {}
    try:
        for name, template in PAYLOADS.items():
            if names is not None and name not in names:
                continue
            if not fenced and name in DANGEROUS_UNFENCED:
                continue
            body = "\n".join("    " + line for line in template.format(**ctx).splitlines())
            code = GUARD.format(body=body)
            raw = slot.request("tensors", code=code, scratch=work / "scratch" / "attacker")
            r = shape("tensors", raw, code, 0.01, 0)
            text = r.get("printed", "")
            markers = [p.name for p in work.glob("escaped*")]
            outcomes[name] = {"escaped": "ESCAPED" in text or bool(markers), "output": text[-300:],
                              "stopped": r.get("stopped"), "fence": raw.get("fence")}
            for p in work.glob("escaped*"):
                p.unlink()
        # the template and the server survived all of it: one more ordinary program runs
        r = shape("tensors", slot.request("tensors", code="print(1 + 1)", scratch=work / "scratch" / "attacker"),
                  "print(1 + 1)", 0.01, 0)
        outcomes["_after"] = {"escaped": False, "output": r.get("printed", "")}
    finally:
        server.close()
        ctx["_listener"].close()
    return outcomes


if __name__ == "__main__":
    result = run_suite(Path(sys.argv[1]), fenced="--unfenced" not in sys.argv)
    print(json.dumps({"uid": os.geteuid(), "outcomes": result}))
