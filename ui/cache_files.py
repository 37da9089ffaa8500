"""A picture returned twice is never served half-written.

Gradio 6.31 stores a returned picture (a numpy array or PIL image, in gr.Image, gr.Gallery, ...) and returned
bytes under the hash of their content (processing_utils.save_pil_to_cache, save_bytes_to_cache), and writes the
file again each time, in place: `write_bytes` truncates it, then writes. When two visitors get the same picture
(every first screen, the same preset run by two people), one visitor's page can fetch the file between the
truncation and the write: the server has announced its length and sends nothing ("peer closed connection without
sending complete message body", seen in bench_programs with eight one-liners at once). Gradio's own
save_file_to_cache already writes under a temporary name and renames.

install() makes the two do the same: a file already there has the same bytes (its folder is their hash), so it is
only touched (the janitor ages files by mtime, ui/sessions.py); a new one is written under a temporary name and
renamed into place, so a reader sees the whole file or none. Checked against Gradio's code at install.
"""
from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

from gradio import processing_utils as pu

_INSTALLED = False


def _place(data: bytes, path: Path) -> str:
    """data at path (its folder named by data's hash), written once and atomically; the path, resolved."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        try:
            os.utime(path)
        except OSError:
            pass
        return str(path.resolve())
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(path.resolve())


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:  # noqa: A002
    data = pu.encode_pil_to_bytes(img, format)
    return _place(data, Path(cache_dir) / pu.hash_bytes(data) / f"{name}.{format}")


def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
    if not Path(file_name).suffix:
        file_name = file_name + pu.detect_audio_format(data)
    return _place(data, Path(cache_dir) / pu.hash_bytes(data) / Path(file_name).name)


def _check_gradio() -> None:
    problems = []
    for fn, names in ((pu.save_pil_to_cache, ("img", "cache_dir", "name", "format")),
                      (pu.save_bytes_to_cache, ("data", "file_name", "cache_dir"))):
        if tuple(inspect.signature(fn).parameters) != names:
            problems.append(f"processing_utils.{fn.__name__} takes {tuple(inspect.signature(fn).parameters)}")
    src = inspect.getsource(pu.save_img_array_to_cache)
    if "save_pil_to_cache(" not in src:
        problems.append("save_img_array_to_cache no longer calls save_pil_to_cache")
    if problems:
        raise RuntimeError("ui.cache_files was written for Gradio 6.31's processing_utils: " + "; ".join(problems))


def install() -> None:
    """Replace Gradio's two in-place writers (once per process; every Blocks shares processing_utils)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _check_gradio()
    pu.save_pil_to_cache = save_pil_to_cache
    pu.save_bytes_to_cache = save_bytes_to_cache
    _INSTALLED = True
