"""One bounded home for every temporary file the app makes: run outputs, examples, Gradio's uploads and downloads.

Where: temp_root() is PLAYGROUND_TEMP_DIR, else the operator's GRADIO_TEMP_DIR, else <system temp>/pytorch-playground;
app.py points Gradio there (GRADIO_TEMP_DIR) when the operator has not. Whatever folder Gradio uses is capped: an
operator's GRADIO_TEMP_DIR that differs from PLAYGROUND_TEMP_DIR is pruned with it, under the same cap (only the
entries Gradio makes there: <sha256>/ folders, tmp* files, deep_links/; the folder may be shared).

What a file costs: its blocks on disk (st_blocks * 512) plus ENTRY_COST per file or folder, not its byte length, so
a million empty uploads count too. prune() keeps the total under PLAYGROUND_TEMP_MAX_MB and deletes entries older
than PLAYGROUND_TEMP_MAX_AGE_S. Deletable units are each run folder under runs/ or scratch/, and each other entry
of a root (Gradio stores every upload and served file as <hash>/<name>).

Whose files go first: the largest spender's. Each unit has an owner, (address, session), set by the ui layer:
set_owner() around a request, so run_dir() records it, and claim() for the uploads a request uses; uploads nobody
used are anonymous, one owner of their own. Over the cap, prune() deletes from the address that holds the most,
within it from the session that holds the most, oldest first, and re-ranks after each deletion; a visitor's
results younger than RECENT_S (the folders their requests made and the files returned to them) go only after
every upload and older file, so an upload flood, however it is spread over sessions, does not reach them. Chosen over a
fixed per-visitor budget, which would have to be tiny to fit many visitors under one cap or would let a few fill
it; and over refusal at upload, which Gradio's upload route does not let the app do (it writes the file first).
So a flood, anonymous or from one address, removes its own files first: another visitor's fresh download and the
files of queued and running jobs survive it. Never deleted: protect()ed units (a queued or running job's folder
and input files, released when it ends) and keep()s (Gradio's example files, marked keep-in-cache, which
thumbnails and example clicks need for the server's lifetime). Locally every visitor is 127.0.0.1, so there
only the per-session ranking separates them.

(On Linux and macOS a file deleted while it is being downloaded still finishes: the open handle keeps it.)
prune() runs each time a run folder is made and, on a live server, from a background thread started by
start_janitor() (not at import) within a second of a new entry in a capped folder (Gradio writes an upload before
any of our code sees it, so this is how a flood is cut back), and at least every JANITOR_S seconds.
"""
from __future__ import annotations

import contextvars
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from core.settings import settings

log = logging.getLogger("playground.tempfiles")

DEFAULT_MAX_MB = 2048        # a Space's ephemeral disk is tens of GB; 2 GB of run files is hours of traffic
DEFAULT_MAX_AGE_S = 6 * 3600
ENTRY_COST = 4096            # per file or folder: an inode and a directory entry, and the smallest allocation of
                             # ext4 and of tmpfs (one page), so an empty file is not free
RECENT_S = 1800              # a visitor's result this young goes only after everything else (they may not have
                             # downloaded it yet)
JANITOR_S = 60.0             # a full prune at least this often; sooner when a capped folder changes (start_janitor)
UNIT_FOLDERS = ("runs", "scratch")     # folders whose children are deleted one by one
NEVER = ("sandbox", "data")  # the sandbox's fork server lives here while the app runs (playground/pool.py); data:
                             # data sets written from the packages that ship them (zoo.standalone.data_file)
ANONYMOUS = ("", "")
# Names Gradio gives what it writes into its folder (processing_utils: sha256 folders; multipart and mkdtemp: tmp*)
_GRADIO_NAME = re.compile(r"^([0-9a-f]{64}|tmp\w+|deep_links)$")

# The operator's GRADIO_TEMP_DIR, read when this module is imported: app.py imports it before it sets its own.
_OPERATOR_GRADIO_DIR = os.environ.get("GRADIO_TEMP_DIR") or None
_LOCK = threading.Lock()        # one prune at a time
_STATE = threading.Lock()       # owners, protections, keeps (held briefly, never while deleting)
_OWNERS: dict[str, tuple[str, str]] = {}
_RESULTS: set[str] = set()      # units a visitor's request made or was given back (not uploads)
_PROTECTED: Counter = Counter()
_KEPT: set[str] = set()
_OWNER: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("playground_temp_owner",
                                                                                default=None)
_JANITOR: threading.Thread | None = None
_MEASURES: dict[str, tuple[tuple, tuple[float, int, int]]] = {}   # unit key -> (its entry's stat, its measure)


def temp_root(create: bool = True) -> Path:
    """The one folder under which all of the app's temporary files live (created on first use)."""
    root = Path(settings().temp_dir or _OPERATOR_GRADIO_DIR
                or Path(tempfile.gettempdir()) / "pytorch-playground")
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def gradio_dir() -> Path:
    """Where Gradio keeps uploads and the files it serves: the operator's GRADIO_TEMP_DIR, else the root itself
    (app.py points GRADIO_TEMP_DIR there). Gradio serves a returned file in place when it already lies under that
    folder, so a run's files are stored once, not copied into a second cache."""
    return Path(_OPERATOR_GRADIO_DIR) if _OPERATOR_GRADIO_DIR else temp_root()


def roots() -> list[tuple[Path, bool]]:
    """(folder, all_ours) for each capped folder: the root, and the operator's Gradio folder where it differs.
    In an operator's folder (which may be shared) only Gradio's entries and our run folders are ours."""
    root = temp_root()
    if not _OPERATOR_GRADIO_DIR:
        return [(root, True)]
    op = Path(_OPERATOR_GRADIO_DIR)
    if _same(root, op):
        return [(root, False)]
    return [(root, True), (op, False)]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return str(a) == str(b)


def limits() -> dict:
    s = settings()
    return {"max_bytes": int(s.temp_max_mb * (1 << 20)), "max_age_s": s.temp_max_age_s}


# ---------------------------------------------------------------- owners, protections, keeps

def set_owner(owner: tuple[str, str] | None) -> contextvars.Token:
    """Files this context makes (run_dir) belong to owner = (address, session) until reset_owner(token)."""
    return _OWNER.set(owner)


def reset_owner(token: contextvars.Token) -> None:
    _OWNER.reset(token)


def current_owner() -> tuple[str, str] | None:
    return _OWNER.get()


def _unit_key(path) -> str | None:
    """The deletable unit that holds path (a key of _OWNERS / _PROTECTED), or None outside the capped folders."""
    try:
        p = Path(path).resolve()
    except (OSError, TypeError, ValueError):
        return None
    for root, _ in roots():
        try:
            parts = p.relative_to(root.resolve()).parts
        except (ValueError, OSError):
            continue
        if not parts:
            return None
        if parts[0] in UNIT_FOLDERS and len(parts) > 1:
            return str(root.resolve() / parts[0] / parts[1])
        return str(root.resolve() / parts[0])
    return None


def claim(paths, owner: tuple[str, str] | None = None, result: bool = False) -> None:
    """Count the units holding paths against owner (default: the current one): the uploads a request uses, or
    with result=True the files it made or returns. The first claim stands: a later request naming someone
    else's file does not take it over. A result is also touched (the file and its unit): Gradio stores a returned
    file under the hash of its content and does not write it again when it is there, so the same picture
    returned today keeps the mtime of its first time, and the janitor would take it for old and delete it while
    the visitor's page is still fetching it."""
    owner = owner or current_owner()
    if not owner:
        return
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        key = _unit_key(path)
        if key is not None:
            with _STATE:
                if _OWNERS.setdefault(key, owner) == owner and result:
                    _RESULTS.add(key)
            if result:
                _touch(path, key)


def _touch(path, unit: str) -> None:
    """Now is the mtime of path and of its unit (a changed unit is measured again by the next prune)."""
    for p in {str(path), unit}:
        try:
            os.utime(p, follow_symlinks=False)
        except (OSError, NotImplementedError):   # gone meanwhile, or no lutimes here: the next prune decides
            continue


def protect(paths) -> list[str]:
    """Never delete the units holding paths until release(the returned keys): a queued or running job's files."""
    keys = [k for k in (_unit_key(p) for p in paths if p) if k is not None]
    with _STATE:
        _PROTECTED.update(keys)
    return keys


def release(keys) -> None:
    with _STATE:
        _PROTECTED.subtract(keys)
        for k in [k for k, n in _PROTECTED.items() if n <= 0]:
            del _PROTECTED[k]


def keep(paths) -> int:
    """Never delete these files (Gradio's example files, which it marks keep-in-cache). Returns how many."""
    resolved = set()
    for p in paths:
        try:
            resolved.add(str(Path(p).resolve()))
        except (OSError, TypeError, ValueError):
            continue
    with _STATE:
        _KEPT.update(resolved)
    return len(resolved)


# ---------------------------------------------------------------- run folders and what is on disk

def run_dir(prefix: str, owner: tuple[str, str] | None = None) -> str:
    """A fresh folder for one run's files, owned by owner (default: the current request's). Prunes first, so the
    cap holds as runs accumulate; call prune() again once the files are written, so the new run counts at once."""
    prune(full=False)
    runs = temp_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = tempfile.mkdtemp(prefix=f"{prefix}-", dir=runs)
    claim(path, owner or current_owner(), result=True)
    return path


@dataclass
class Unit:
    """One deletable entry: its newest mtime, byte length, disk cost, where it is (a path string: a Path per entry
    per second is most of an incremental prune's cost), and key."""

    mtime: float
    size: int
    cost: int
    where: str
    key: str

    @property
    def path(self) -> Path:
        return Path(self.where)


def _cost(st: os.stat_result) -> int:
    return getattr(st, "st_blocks", (st.st_size + 511) // 512) * 512 + ENTRY_COST


def _measure(path: str, st: os.stat_result) -> tuple[float, int, int]:
    """(newest mtime, bytes, disk cost) of a file or a whole folder (st: its own lstat)."""
    newest, size, cost = st.st_mtime, st.st_size, _cost(st)
    if stat.S_ISDIR(st.st_mode):
        size = 0
        for dirpath, dirs, files in os.walk(path):
            for name, is_file in [(d, False) for d in dirs] + [(f, True) for f in files]:
                try:
                    s = os.lstat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                cost += _cost(s)
                if is_file:
                    size += s.st_size
                    newest = max(newest, s.st_mtime)
    return newest, size, cost


def _measured(entry: os.DirEntry, key: str, full: bool) -> tuple[float, int, int]:
    """_measure(entry), or the last measure of the unit while its own entry is unchanged (same inode, mtime, size:
    a folder's mtime changes when an entry is added to or removed from it). A full prune measures everything."""
    st = entry.stat(follow_symlinks=False)
    sig = (st.st_ino, st.st_mtime_ns, st.st_size, getattr(st, "st_blocks", 0))
    with _STATE:
        hit = None if full else _MEASURES.get(key)
    if hit is not None and hit[0] == sig:
        return hit[1]
    m = _measure(entry.path, st)
    with _STATE:
        _MEASURES[key] = (sig, m)
    return m


def _entries_of(root: Path, all_ours: bool, full: bool = True) -> list[Unit]:
    """The deletable units under one root, read with os.scandir (one lstat per unit, no Path objects: the
    janitor lists every unit each second something changed, thousands on a busy server)."""
    try:
        listing = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    base = str(root.resolve())
    found: list[tuple[os.DirEntry, str]] = []
    for entry in listing:
        name = entry.name
        if name in NEVER:
            continue
        if name in UNIT_FOLDERS and entry.is_dir(follow_symlinks=False):
            try:
                with os.scandir(entry.path) as inside:
                    found += [(child, os.path.join(base, name, child.name)) for child in inside]
            except FileNotFoundError:
                continue
        elif all_ours or _GRADIO_NAME.match(name):
            found.append((entry, os.path.join(base, name)))
    units: list[Unit] = []
    for entry, key in found:
        try:
            mtime, size, cost = _measured(entry, key, full)
        except FileNotFoundError:   # deleted meanwhile (another prune, or Gradio)
            continue
        units.append(Unit(mtime, size, cost, entry.path, key))
    return units


def _entries(full: bool = True) -> list[Unit]:
    units = [u for root, ours in roots() for u in _entries_of(root, ours, full)]
    with _STATE:
        for key in set(_MEASURES) - {u.key for u in units}:
            del _MEASURES[key]
    return units


def usage_bytes() -> int:
    """Bytes (file lengths) now held under the capped folders."""
    return sum(u.size for u in _entries())


def usage_cost() -> int:
    """What the cap counts: disk blocks plus ENTRY_COST per entry."""
    return sum(u.cost for u in _entries())


def _delete(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:  # a file held open on Windows, say: the next prune tries again
        log.warning("could not delete %s: %s", path, exc)


def _untouchable(units: list[Unit]) -> set[str]:
    """Keys of units that hold a protected job's files or a kept file."""
    with _STATE:
        protected, kept = set(_PROTECTED), list(_KEPT)
    held = set(protected)
    for f in kept:
        key = _unit_key(f)
        if key is not None:
            held.add(key)
    return held & {u.key for u in units}


def _shed(units: list[Unit], owners: dict, by_addr: Counter, by_owner: Counter, cost: int, cap: int,
          gone: list[Unit]) -> int:
    """Append to gone the units to delete, largest spender first (the address, then within it the session,
    holding the most now, re-ranked after each deletion), oldest first, until cost fits cap. Returns the cost."""
    queues: dict[tuple[str, str], list[Unit]] = defaultdict(list)
    for u in units:
        queues[owners[u.key]].append(u)
    for q in queues.values():
        q.sort(key=lambda u: u.mtime, reverse=True)      # oldest last: pop() takes it
    while cost > cap and queues:
        addr = max({o[0] for o in queues}, key=lambda a: by_addr[a])
        o = max((o for o in queues if o[0] == addr), key=lambda o: by_owner[o])
        u = queues[o].pop()
        if not queues[o]:
            del queues[o]
        gone.append(u)
        cost -= u.cost
        by_addr[addr] -= u.cost
        by_owner[o] -= u.cost
    return cost


def prune(now: float | None = None, full: bool = True) -> dict:
    """Delete unprotected entries past the age limit, then the largest spender's oldest until the tree fits the
    cap (see the module docstring). Returns a report. full=False re-measures only the units whose own entry
    changed (new uploads, new run folders): what the janitor does within a second of a change and run_dir() on
    each run, so a busy server does not walk its whole temp tree every second; a full prune (every JANITOR_S, and
    any direct call) re-measures everything, catching files that grew inside a folder meanwhile (a visitor's
    scratch folder has its own quota, watched while a program runs)."""
    lim = limits()
    now = time.time() if now is None else now
    with _LOCK:
        units = _entries(full)
        held = _untouchable(units)
        with _STATE:
            for k in set(_OWNERS) - {u.key for u in units}:      # gone by other means (a failed job's rmtree)
                del _OWNERS[k]
                _RESULTS.discard(k)
            owners = {u.key: _OWNERS.get(u.key, ANONYMOUS) for u in units}
            recent = {u.key for u in units if u.key in _RESULTS and now - u.mtime < RECENT_S}
        gone: list[Unit] = []
        alive = []
        for u in units:
            (gone if now - u.mtime > lim["max_age_s"] and u.key not in held else alive).append(u)
        cost = sum(u.cost for u in alive)
        if cost > lim["max_bytes"]:
            by_addr: Counter = Counter()         # address -> cost it holds
            by_owner: Counter = Counter()        # (address, session) -> cost it holds
            for u in alive:
                by_addr[owners[u.key][0]] += u.cost
                by_owner[owners[u.key]] += u.cost
            # Uploads and older files first, then visitors' recent results; each the largest spender's first.
            for tier in ([u for u in alive if u.key not in held and u.key not in recent],
                         [u for u in alive if u.key not in held and u.key in recent]):
                cost = _shed(tier, owners, by_addr, by_owner, cost, lim["max_bytes"], gone)
        for u in gone:
            _delete(u.path)
        with _STATE:
            for u in gone:
                _OWNERS.pop(u.key, None)
                _RESULTS.discard(u.key)
        gone_keys = {u.key for u in gone}
        left = [u for u in units if u.key not in gone_keys]
        # bytes: the survivors' file lengths; cost: what the cap counts (blocks and entries)
        return {"deleted": len(gone), "freed_bytes": sum(u.size for u in gone), "bytes": sum(u.size for u in left),
                "cost": sum(u.cost for u in left), "held": len(held), **lim}


def _roots_mtime() -> float:
    """Newest mtime of the capped folders and their unit folders: changes when Gradio stores a new upload."""
    newest = 0.0
    for root, _ in roots():
        for d in [root] + [root / f for f in UNIT_FOLDERS]:
            try:
                newest = max(newest, d.stat().st_mtime)
            except OSError:
                continue
    return newest


def start_janitor(interval_s: float = JANITOR_S, poll_s: float = 1.0) -> threading.Thread:
    """Prune every interval_s seconds in a daemon thread, and within poll_s of a new entry in a capped folder
    (a stat per folder per second: an upload flood is cut back within a second, not after interval_s).
    Idempotent; called when the server launches."""
    global _JANITOR
    if _JANITOR is not None and _JANITOR.is_alive():
        return _JANITOR

    def loop():
        last, seen = 0.0, -1.0
        while True:
            try:
                changed = _roots_mtime()
                if time.monotonic() - last >= interval_s:
                    prune()
                    last, seen = time.monotonic(), changed
                elif changed != seen:
                    prune(full=False)
                    seen = changed
            except Exception as exc:  # noqa: BLE001 - the janitor must never die
                log.warning("temp prune failed: %s", exc)
            time.sleep(poll_s)

    _JANITOR = threading.Thread(target=loop, name="temp-janitor", daemon=True)
    _JANITOR.start()
    return _JANITOR
