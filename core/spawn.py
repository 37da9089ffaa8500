"""Starting a helper process, the one way both of ours start: the sandbox's worker (playground/worker.py) and the
job worker (jobs/runners.py).

A fresh interpreter (`python -m <module>`, so the server's __main__, app.py and with it gradio, is not re-imported
as multiprocessing's 'spawn' would) connects back to a one-time listener on 127.0.0.1 (a free port). The parent
writes the address and a random authkey to the child's stdin (out of argv and the environment); both sides prove
the key (multiprocessing's HMAC challenge), and from then on they talk over a multiprocessing Connection. No file
descriptor is inherited, so it works the same on Linux, macOS and Windows. What the two sides then say to each
other is the caller's business.
"""
from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

START_SECONDS = 120.0   # a cold start imports torch (and more) on a busy machine: allow for it


class SpawnError(Exception):
    """The child did not connect. reason: "exited" (it died first; exit_code says how), "refused" (a connection
    failed the key) or "timeout"; the child has been killed and reaped in every case."""

    def __init__(self, reason: str, exit_code: int | None, error: str | None = None):
        super().__init__(f"{reason} (exit code {exit_code})")
        self.reason, self.exit_code, self.error = reason, exit_code, error


def reap(proc: subprocess.Popen, timeout: float = 5) -> int | None:
    """Kill the process if it still runs and wait for it; its exit code (None if it would not die)."""
    if proc.poll() is None:
        proc.kill()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def spawn(module: str, *, cwd: str | Path, env: dict[str, str], timeout: float = START_SECONDS
          ) -> tuple[subprocess.Popen, Connection]:
    """Start `python -m module` in cwd with env, and wait up to timeout for it to connect back: (process,
    connection). Raises SpawnError (the child reaped) when it dies, fails the key or does not connect in time."""
    key = secrets.token_bytes(32)
    with Listener(("127.0.0.1", 0), authkey=key) as listener:
        proc = subprocess.Popen([sys.executable, "-m", module], cwd=str(cwd), env=env, stdin=subprocess.PIPE)
        try:
            host, port = listener.address
            proc.stdin.write(f"{host} {port} {key.hex()}\n".encode())
            proc.stdin.close()
        except OSError:             # the child is gone already (a broken pipe)
            raise SpawnError("exited", reap(proc)) from None
        except BaseException:
            reap(proc)
            raise
        return proc, _accept(listener, proc, timeout)


def _accept(listener: Listener, proc: subprocess.Popen, timeout: float) -> Connection:
    """listener.accept() (with the authkey challenge) that gives up when the child dies or time runs out."""
    box: dict = {}

    def run():
        try:
            box["conn"] = listener.accept()
        except Exception as exc:  # noqa: BLE001 - a wrong key, a closed listener
            box["error"] = exc

    t = threading.Thread(target=run, name="spawn-accept", daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while t.is_alive() and proc.poll() is None and time.monotonic() < deadline:
        t.join(0.1)
    if t.is_alive():  # wake the blocked accept() so the thread ends: a connection without the key fails it
        try:
            Client(listener.address).close()
        except Exception:  # noqa: BLE001
            pass
        t.join(5)
    if "conn" in box and proc.poll() is None:
        return box["conn"]
    if "conn" in box:
        box["conn"].close()
    if proc.poll() is not None:
        raise SpawnError("exited", reap(proc))
    if "error" in box and time.monotonic() < deadline:
        raise SpawnError("refused", reap(proc), type(box["error"]).__name__)
    raise SpawnError("timeout", reap(proc))


def connect_to_parent(stream=None) -> Connection:
    """The child's side: read "host port key" from stdin (one line) and connect back."""
    host, port, key = (stream or sys.stdin).readline().split()
    return Client((host, int(port)), authkey=bytes.fromhex(key))
