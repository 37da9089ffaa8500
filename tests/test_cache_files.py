"""A picture two visitors get is never read half-written (ui/cache_files.py): Gradio rewrote a content-addressed
file in place (truncate, then write) each time it was returned, while another page could be fetching it."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytestmark = pytest.mark.unit


def _hammer(save, cache: str, img, stop: threading.Event) -> None:
    while not stop.is_set():
        save(img, cache, format="png")


def test_a_picture_saved_again_is_never_read_short(tmp_path):
    """Gradio's own save_pil_to_cache gives hundreds of short reads in this loop (478 of 3,000 here)."""
    from PIL import Image

    from gradio import processing_utils as pu
    from ui import cache_files

    cache_files.install()
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (260, 360, 3), dtype=np.uint8))
    path = pu.save_pil_to_cache(img, str(tmp_path), format="png")
    size = len(open(path, "rb").read())
    stop = threading.Event()
    writers = [threading.Thread(target=_hammer, args=(pu.save_pil_to_cache, str(tmp_path), img, stop))
               for _ in range(2)]
    for w in writers:
        w.start()
    try:
        short = sum(len(open(path, "rb").read()) != size for _ in range(3000))
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert short == 0, f"{short} of 3000 reads saw a partly written file"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["image.png"]   # no staging file left


def test_bytes_are_written_once_and_touched_after(tmp_path):
    import os
    import time

    from gradio import processing_utils as pu
    from ui import cache_files

    cache_files.install()
    first = pu.save_bytes_to_cache(b"RIFF....WAVEfmt ", "clip.wav", str(tmp_path))
    os.utime(first, (time.time() - 3600, time.time() - 3600))
    inode = os.stat(first).st_ino
    again = pu.save_bytes_to_cache(b"RIFF....WAVEfmt ", "clip.wav", str(tmp_path))
    assert again == first and os.stat(first).st_ino == inode              # not written again
    assert time.time() - os.stat(first).st_mtime < 60                     # but fresh for the janitor
