"""One whole program through the template (playground/fork_server.py): the run's stream read under the wall
clock, Cancel and the scratch folder's quota, and its result turned into what the Tensors and Autograd tabs
show (the same keys as the restricted sandbox's playground/programs.py, plus values, notes, figures, files).

A slot has the interface of playground/worker.Worker, so the pool's rules (one program per visitor, a cap per
address, fair order, a bounded number at once) apply to whole programs unchanged."""
from __future__ import annotations

import errno
import os
import re
import select
import stat
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from core.errors import term
from core.i18n import t
from core.settings import settings
from playground import codegen, fence, frames
from playground.fork_server import ForkServer, decode_png, decode_raw, describe_exit, scratch_usage
from playground.limits import at_once, memory_size
from playground.tensor_view import values_text
from playground.words import autograd_lines, child_words, said
from playground.worker import SandboxUnavailable

POLL_S = 0.1
FIGURE = re.compile(r"Figure (\d+)")   # the caption program_run gives the program's own figures
QUOTA_EVERY_S = 0.25
YOUNG_S = 0.25         # a program's first quarter second takes turns on the cores (Turn)


@lru_cache(maxsize=1)
def _cores() -> threading.Semaphore:
    return threading.Semaphore(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                   else os.cpu_count() or 1))


class Turn:
    """Young programs take turns on the machine's cores: at most one per core in its first YOUNG_S, the others
    waiting in arrival order (at most YOUNG_S, then they start anyway). Eight one-liners sent at once then finish
    one pair after another instead of all together at the end (a shared 2-core machine slows every one of them
    equally); a long program gives its turn up after YOUNG_S and goes on beside the next ones (the pool's bounded
    number at once still holds), so a spinning program delays another by at most YOUNG_S."""

    def __init__(self):
        self._held = _cores().acquire(timeout=YOUNG_S)
        self.until = time.monotonic() + YOUNG_S

    def give_up(self, now: float | None = None) -> None:
        """Give the turn to the next program once the run is done, or past its young time (`now`)."""
        if self._held and (now is None or now >= self.until):
            self._held = False
            _cores().release()


def _whole(value, default, lo):
    """A PLAYGROUND_SANDBOX_* limit as whole programs take it: their own default when it is not set, or when it is
    below what they allow (the restricted sandbox's 0, "no limit", is not theirs)."""
    return default if value is None or value < lo else value


@dataclass
class ProgramLimits:
    """The limits of one whole program (PLAYGROUND_SANDBOX_*, PLAYGROUND_SCRATCH_*); shown in the tabs."""

    wall_s: float = field(default_factory=lambda: _whole(settings().sandbox_wall_s, 30.0, 0.5))
    cpu_s: float = field(default_factory=lambda: _whole(settings().sandbox_cpu_s, 30.0, 1))
    memory_mb: int = field(default_factory=lambda: _whole(settings().sandbox_memory_mb, 2048, 64))
    scratch_mb: int = field(default_factory=lambda: settings().scratch_mb)
    scratch_files: int = field(default_factory=lambda: settings().scratch_files)

    def describe(self, workers: int, fenced: bool, probe: dict, language: str = "en") -> str:
        line = t("sandbox.limits.whole", language, wall_s=self.wall_s, cpu_s=self.cpu_s,
                 memory=memory_size(self.memory_mb), scratch_mb=self.scratch_mb, scratch_files=self.scratch_files,
                 at_once=at_once(workers, language))
        if fenced:
            return line + t("sandbox.limits.fenced", language, fence=fence.describe(probe, language))
        return line + t("sandbox.limits.unfenced", language)


def list_files(folder: Path, limit: int = 50) -> list[str]:
    """The visitor's downloadable files: regular files only (no links, no hard links to anything else)."""
    out = []
    try:
        for e in sorted(os.scandir(folder), key=lambda e: e.name):
            st = e.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                out.append(e.path)
            if len(out) >= limit:
                break
    except OSError:
        pass
    return out


def trim_to_quota(folder: Path, max_bytes: int, max_files: int) -> list[str]:
    """Delete the newest entries until the folder fits; returns the names deleted."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            entries.append((st.st_mtime, p, stat.S_ISDIR(st.st_mode)))
    deleted = []
    entries.sort(reverse=True)
    for _, p, is_dir in entries:
        used, count = scratch_usage(folder, max_files + 10_000)
        if used <= max_bytes and count <= max_files:
            break
        try:
            if is_dir:
                os.rmdir(p)
            else:
                os.unlink(p)
            deleted.append(os.path.relpath(p, folder))
        except OSError:
            continue
    return deleted


class ForkSlot:
    """One concurrent run on the shared template; the pool's stand-in for a Worker."""

    def __init__(self, server: ForkServer, limits: ProgramLimits, name: str):
        self.server, self.limits, self.name = server, limits, name
        self.fenced = server.fenced
        self.restarts = 0
        self.closed = False

    @property
    def info(self) -> dict:
        return self.server.info

    def alive(self) -> bool:
        return self.server.alive()

    def start(self, reopen: bool = True) -> None:
        if self.closed and not reopen:
            return
        self.closed = False
        self.server.start()

    def kill(self) -> None:  # a slot holds no process of its own between runs
        pass

    def close(self) -> None:
        self.closed = True
        self.server.close()

    def request(self, kind: str, code: str = "", lr: float = 0.01, steps: int = 0, scratch: Path | None = None,
                on_output=None, cancelled=None, read_paths: list[str] = (), language: str = "en") -> dict:
        if scratch is None:
            raise SandboxUnavailable("sandbox.no_scratch")
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        lim = self.limits
        spec = {"t": "spec", "kind": kind, "code": code, "lr": float(lr), "steps": int(steps),
                "scratch": str(scratch), "cpu_s": int(lim.cpu_s),
                "memory_bytes": lim.memory_mb << 20, "file_bytes": lim.scratch_mb << 20,
                "read_paths": list(read_paths), "device": _device(),
                "graph_title": t("sandbox.graph.title", language),     # the program's process reads no catalogue
                "graph_truncated": t("sandbox.graph.truncated", language), "words": child_words(language)}
        t0 = time.perf_counter()
        turn = Turn()
        try:
            pid, mine = self.server.fork()
            try:
                frames.send(mine, spec)
                outcome = self._read(mine, pid, scratch, on_output, cancelled, turn)
            finally:
                mine.close()
        finally:
            turn.give_up()
        outcome["elapsed_ms"] = (time.perf_counter() - t0) * 1000
        return outcome

    def _read(self, sock, pid: int, scratch: Path, on_output, cancelled, turn: Turn | None = None) -> dict:
        lim = self.limits
        reader = frames.Reader()
        printed: list[str] = []
        stdout: list[str] = []
        fence_info, result, blobs, why = None, None, [], None
        deadline = time.monotonic() + lim.wall_s
        next_quota = time.monotonic() + QUOTA_EVERY_S
        try:
            while result is None:
                now = time.monotonic()
                if turn is not None:
                    turn.give_up(now)
                if now >= deadline:
                    why = term("sandbox.why.wall", wall_s=lim.wall_s)
                    break
                if cancelled is not None and cancelled():
                    why = term("sandbox.why.cancel")
                    break
                if now >= next_quota:
                    used, count = scratch_usage(scratch, lim.scratch_files)
                    if used > lim.scratch_mb << 20 or count > lim.scratch_files:
                        why = term("sandbox.why.quota", scratch_mb=lim.scratch_mb, scratch_files=lim.scratch_files)
                        break
                    next_quota = now + QUOTA_EVERY_S
                r, _, _ = select.select([sock], [], [], min(POLL_S, max(deadline - now, 0.001)))
                if not r:
                    continue
                try:
                    chunk = sock.recv(1 << 20)
                except OSError as exc:
                    chunk = b"" if exc.errno in (errno.ECONNRESET, errno.EPIPE) else b""
                if not chunk:
                    break
                reader.feed(chunk)
                for header, bl in reader.messages():
                    t = header["t"]
                    if t == "out" and isinstance(header.get("s"), str):
                        printed.append(header["s"])
                        if not header.get("e"):
                            stdout.append(header["s"])
                        if on_output is not None:
                            on_output("".join(printed))
                    elif t == "ready":
                        fence_info = header.get("fence")
                    elif t == "failed":
                        why = term("sandbox.why.start_failed", detail=str(header.get("message"))[:300])
                    elif t == "result":
                        result, blobs = header, bl
        except frames.FrameError as exc:
            why = term("sandbox.why.frame", detail=str(exc))
        if result is None:
            self.server.kill(pid)
            status = self.server.exit_status(pid, timeout=5)
            if why is None:
                why = describe_exit(status, lim.cpu_s)
            self.restarts += 0  # the template stays warm: nothing to restart
            return {"stopped": why, "printed": "".join(printed), "stdout": "".join(stdout), "fence": fence_info}
        # no wait for the child's exit: tearing down a large address space takes a few ms, the answer is complete
        result["printed"] = "".join(printed)
        result["stdout"] = "".join(stdout)
        result["fence"] = fence_info
        result["blobs"] = blobs
        return result


def _device() -> str:
    from core.device import get_device

    return str(get_device())


def shape(kind: str, raw: dict, code: str, lr: float, steps: int, language: str = "en") -> dict:
    """The tab-facing result (the restricted sandbox's keys, plus values, notes, figures, files, printed), our
    own words in `language` (what the program printed stays as it printed it)."""
    device = raw.get("device", "cpu")
    printed = raw.get("printed", "")
    if "stopped" in raw:
        why = said(raw["stopped"], language)
        sep = "\n" if printed and not printed.endswith("\n") else ""
        return {"text": printed + sep + t("sandbox.stopped", language, why=why),
                "rows": [], "images": [], "code": "", "error": why, "device": device, "values": "",
                "notes": [], "figures": [], "graph": None, "leaves": [], "step_rows": [], "losses": [],
                "printed": printed, "stdout": raw.get("stdout", ""), "stopped": why}
    pictures = []
    captions = raw.get("captions") or []
    shapes = raw.get("shapes") if isinstance(raw.get("shapes"), list) else []
    n_own = raw.get("n_pictures") if isinstance(raw.get("n_pictures"), int) else 0
    for i, blob in enumerate(raw.get("blobs") or []):
        own = i < n_own
        img = decode_raw(blob, shapes[i]) if own and i < len(shapes) else decode_png(blob)
        caption = str(captions[i])[:60] if i < len(captions) and isinstance(captions[i], str) else ""
        figure = FIGURE.fullmatch(caption) if not own else None
        if figure:
            caption = t("sandbox.figure", language, num=figure.group(1))
        if img is not None:
            pictures.append((img, caption, own))
    err = raw.get("error") if isinstance(raw.get("error"), dict) else None
    error_text = None
    if err:
        line = err.get("line")
        error_text = f"{err.get('type')}: {err.get('message')}" + (f" (line {line})" if line else "")
    notes = [said(n, language)[:500] for n in (raw.get("notes") or [])][:10]
    figures = [(img, cap) for img, cap, own in pictures if not own]
    out = {"text": printed, "error": error_text, "error_info": err, "device": device, "notes": notes,
           "figures": figures, "printed": printed, "stdout": raw.get("stdout", "")}
    if kind == "tensors":
        rows = [[c if isinstance(c, (int, float, bool)) or c is None else str(c)[:200] for c in list(r)[:9]]
                for r in (raw.get("rows") or [])[:200] if isinstance(r, list)]
        out.update(rows=rows, values=values_text(raw.get("values", ""), language),
                   images=[(img, cap) for img, cap, own in pictures if own],
                   code=codegen.plain_code(code, device, show_names=True, language=language))
    else:
        graph = next((img for img, cap, own in pictures if own and cap == "graph"), None)
        leaves, step_rows = raw.get("leaves") or [], raw.get("step_rows") or []
        losses = [float(x) for x in (raw.get("losses") or [])][:1000]
        lines = [t("sandbox.autograd.device", language, device=device)]
        lines += [said(n, language) for n in raw.get("autograd_notes") or []]
        lines += autograd_lines(leaves, step_rows, losses, language)
        if printed:
            lines.append(t("sandbox.autograd.printed", language) + "\n" + printed.rstrip("\n"))
        out.update(text="\n".join(lines), graph=graph, leaves=leaves, step_rows=step_rows, losses=losses,
                   code=codegen.plain_code(code, device, lr=float(lr), steps=int(steps),
                                           loss_name=str(raw.get("loss_name", "loss")),
                                           leaves=[row[0] for row in leaves], language=language))
    return out
