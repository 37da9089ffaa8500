"""One bounded home for every temporary file the app makes: run outputs, examples, Gradio's uploads and downloads.

Everything lives under temp_root() (PLAYGROUND_TEMP_DIR, default <system temp>/pytorch-playground). prune()
keeps the whole tree under PLAYGROUND_TEMP_MAX_MB (oldest entries deleted first: the cap is hard, so the newest
runs are the ones that survive) and deletes entries older than PLAYGROUND_TEMP_MAX_AGE_S. (On Linux and macOS a
file deleted while it is being downloaded still finishes: the open handle keeps it.) prune() runs each time a run
folder is made and, on a live server, every minute from a background thread started by start_janitor() (not at
import).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger("playground.tempfiles")

DEFAULT_MAX_MB = 2048        # a Space's ephemeral disk is tens of GB; 2 GB of run files is hours of traffic
DEFAULT_MAX_AGE_S = 6 * 3600
_LOCK = threading.Lock()
_JANITOR: threading.Thread | None = None


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return float(default)


def temp_root(create: bool = True) -> Path:
    """The one folder under which all of the app's temporary files live (created on first use)."""
    root = Path(os.environ.get("PLAYGROUND_TEMP_DIR") or Path(tempfile.gettempdir()) / "pytorch-playground")
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def gradio_dir() -> Path:
    """Where Gradio keeps uploads and the files it serves: the root itself (app.py points GRADIO_TEMP_DIR here).
    Gradio serves a returned file in place when it already lies under that folder, so a run's files are
    stored once, not copied into a second cache."""
    return temp_root()


def limits() -> dict:
    return {"max_bytes": int(_env_float("PLAYGROUND_TEMP_MAX_MB", DEFAULT_MAX_MB) * (1 << 20)),
            "max_age_s": _env_float("PLAYGROUND_TEMP_MAX_AGE_S", DEFAULT_MAX_AGE_S)}


def run_dir(prefix: str) -> str:
    """A fresh folder for one run's files (pruning old ones first, so the cap holds as runs accumulate).
    Call prune() again once the files are written, so the new run counts against the cap at once."""
    prune()
    runs = temp_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"{prefix}-", dir=runs)


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """(mtime, bytes, path) of each deletable unit: each run folder under runs/, and each other entry of the
    root as a whole (Gradio stores every upload and served file as <hash>/<name>)."""
    units: list[tuple[float, int, Path]] = []
    runs = root / "runs"
    children = [c for c in root.iterdir() if c != runs] + (list(runs.iterdir()) if runs.is_dir() else [])
    for child in children:
        size, newest = 0, 0.0
        try:
            if child.is_dir() and not child.is_symlink():
                for dirpath, _dirs, files in os.walk(child):
                    for f in files:
                        st = os.lstat(os.path.join(dirpath, f))
                        size += st.st_size
                        newest = max(newest, st.st_mtime)
                newest = max(newest, child.lstat().st_mtime)
            else:
                st = child.lstat()
                size, newest = st.st_size, st.st_mtime
        except FileNotFoundError:   # deleted meanwhile (another prune, or Gradio)
            continue
        units.append((newest, size, child))
    return units


def usage_bytes() -> int:
    """Bytes now held under the temp root."""
    return sum(size for _, size, _ in _entries(temp_root()))


def _delete(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:  # a file held open on Windows, say: the next prune tries again
        log.warning("could not delete %s: %s", path, exc)


def prune(now: float | None = None) -> dict:
    """Delete entries past the age limit, then the oldest until the tree fits the size cap. Returns a report."""
    lim = limits()
    now = time.time() if now is None else now
    with _LOCK:
        units = sorted(_entries(temp_root()))   # oldest first
        total = sum(size for _, size, _ in units)
        deleted = freed = 0
        for mtime, size, path in units:
            if now - mtime > lim["max_age_s"] or total > lim["max_bytes"]:
                _delete(path)
                total -= size
                freed += size
                deleted += 1
        return {"deleted": deleted, "freed_bytes": freed, "bytes": total, **lim}


def start_janitor(interval_s: float = 60.0) -> threading.Thread:
    """Prune every interval_s seconds in a daemon thread (idempotent; called when the server launches)."""
    global _JANITOR
    if _JANITOR is not None and _JANITOR.is_alive():
        return _JANITOR

    def loop():
        while True:
            try:
                prune()
            except Exception as exc:  # noqa: BLE001 - the janitor must never die
                log.warning("temp prune failed: %s", exc)
            time.sleep(interval_s)

    _JANITOR = threading.Thread(target=loop, name="temp-janitor", daemon=True)
    _JANITOR.start()
    return _JANITOR
