"""What a picture may cost before its pixels are decoded: formats, bytes, pixels and the pieces of its file.

Pillow's C decoders cannot be interrupted, and several of its format plugins walk a file's structure in Python
loops whose cost grows with the number of pieces in the file, not with its pixels: a 2 MB TIFF of 20,000
one-pixel pages costs 2-6 s to count (n_frames is quadratic), a 24 MB PNG of 2 million empty chunks 4 s, a JPEG
of 6 million empty markers 3 s, a GIF of a million empty comment blocks minutes (each comment is appended to the
last: quadratic). check_structure() walks the same structure itself, with a cap on the pieces, before Pillow sees
the file; restrict_pil() installs that check, a format allow-list and the pixel cap into Pillow's own open table,
so every Image.open in the process is bounded, Gradio's decoding of sketchpad layers and pasted images included.

Formats (ALLOWED_FORMATS): PNG (the sketchpads, screenshots), JPEG (photos; MPO, the multi-picture JPEG of phone
cameras, opens through it), GIF, WebP and uncompressed BMP, the first frame of an animation only. TIFF is refused:
its pages form a chain of offsets (which can loop or run thousands deep), each page has its own compression scheme
decoded by libtiff, and strips or tiles can number millions; bounding that means a TIFF parser of our own, and no
tab needs TIFF (a visitor saves the picture as PNG or JPEG). Run-length-encoded BMP is refused as well: Pillow
decodes it in Python, one run at a time.
"""
from __future__ import annotations

import struct
import warnings

from PIL import Image

from core.errors import InputError

MAX_PIXELS = 40_000_000        # refuse larger images before decoding
MAX_FILE_BYTES = 25 * 1024 * 1024
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
# Pieces of a file before Pillow parses it. Real files stay far below: a 25 MB PNG written in 8 KB IDAT chunks has
# 3,200 chunks; a JPEG a dozen segments and 10-40 scans (progressive, mozjpeg); a GIF a few extension blocks
# before its first image (Photoshop's XMP "magic trailer" is 258 one-byte sub-blocks); an animated WebP sticker a
# few hundred frames. Each cap bounds Pillow's per-piece loop to tens of milliseconds.
MAX_PNG_CHUNKS = 20_000
MAX_JPEG_SEGMENTS = 5_000      # markers before the first scan (each a Python iteration in Pillow's JPEG plugin)
MAX_JPEG_SCANS = 40            # libjpeg decodes every scan of a progressive JPEG over the whole picture
MAX_GIF_EXTENSIONS = 256       # extension blocks before the first image
MAX_GIF_SUBBLOCKS = 4_096      # their data sub-blocks (a comment's are concatenated one by one: quadratic)
MAX_WEBP_CHUNKS = 10_000       # RIFF chunks, frames (ANMF) included


class ImageInputError(InputError):
    """An input that is not a usable image (keys image.*)."""

    key = "image.unusable"


def _png(b: bytes) -> None:
    pos, n = 8, 0
    while pos + 8 <= len(b):
        length, kind = struct.unpack_from(">I4s", b, pos)
        n += 1
        if n > MAX_PNG_CHUNKS:
            raise ImageInputError("image.png_chunks", limit=MAX_PNG_CHUNKS)
        if kind == b"IEND":
            return
        pos += 12 + length


def _jpeg(b: bytes) -> None:
    pos, n = 2, 0
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            return                                   # not a marker: Pillow reports the damage
        marker = b[pos + 1]
        if marker == 0xFF:                           # fill byte before a marker
            pos += 1
            continue
        n += 1
        if n > MAX_JPEG_SEGMENTS:
            raise ImageInputError("image.jpeg_segments", limit=MAX_JPEG_SEGMENTS)
        if marker == 0xDA:                           # start of the first scan: the rest is entropy-coded data
            break
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            pos += 2                                 # markers without a length
            continue
        pos += 2 + struct.unpack_from(">H", b, pos + 2)[0]
    # In entropy-coded data every 0xFF byte is followed by 0x00 (byte stuffing), so FF DA occurs only as a marker:
    # this counts the scans libjpeg would decode, in C, over a buffer Python already holds.
    scans = b.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise ImageInputError("image.jpeg_scans", scans=scans)


def _gif(b: bytes) -> None:
    if len(b) < 13:
        return
    flags = b[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)     # after the global colour table
    extensions = subblocks = 0
    while pos < len(b) and b[pos] == 0x21:                         # '!': an extension block
        extensions += 1
        if extensions > MAX_GIF_EXTENSIONS:
            raise ImageInputError("image.gif_extensions", limit=MAX_GIF_EXTENSIONS)
        pos += 2                                                   # '!' and the extension's label
        while pos < len(b):
            size = b[pos]
            pos += 1 + size
            subblocks += 1
            if subblocks > MAX_GIF_SUBBLOCKS:
                raise ImageInputError("image.gif_blocks", limit=MAX_GIF_SUBBLOCKS)
            if size == 0:
                break
    # ',' (the first image: Pillow decodes only it), ';' or damage: Pillow takes it from here.


def _webp_canvas(kind: bytes, data: bytes) -> tuple[int, int] | None:
    """The picture's size from a WebP header chunk (libwebp allocates the canvas as soon as Pillow opens it)."""
    if kind == b"VP8X" and len(data) >= 10:
        return 1 + int.from_bytes(data[4:7], "little"), 1 + int.from_bytes(data[7:10], "little")
    if kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", data, 6)
        return w & 0x3FFF, h & 0x3FFF
    return None


def _webp(b: bytes) -> None:
    pos, n = 12, 0
    while pos + 8 <= len(b):
        kind, size = struct.unpack_from("<4sI", b, pos)
        n += 1
        if n > MAX_WEBP_CHUNKS:
            raise ImageInputError("image.webp_chunks", limit=MAX_WEBP_CHUNKS)
        if n == 1:
            wh = _webp_canvas(kind, b[pos + 8:pos + 8 + min(size, 16)])
            if wh and wh[0] * wh[1] > MAX_PIXELS:
                raise ImageInputError("image.too_large", width=wh[0], height=wh[1], limit_mp=MAX_PIXELS // 1_000_000)
        pos += 8 + size + (size & 1)


def _bmp(b: bytes) -> None:
    if len(b) >= 34 and struct.unpack_from("<I", b, 14)[0] >= 40:
        compression = struct.unpack_from("<I", b, 30)[0]
        if compression in (1, 2):
            raise ImageInputError("image.bmp_rle")


_WALKERS = {"PNG": _png, "JPEG": _jpeg, "GIF": _gif, "WEBP": _webp, "BMP": _bmp}


def check_structure(data: bytes, fmt: str) -> None:
    """Refuse (ImageInputError) a file of format `fmt` whose structure would cost Pillow more than a picture's
    worth of work before its pixels: too large a file, or more pieces than any real picture has. Milliseconds."""
    if len(data) > MAX_FILE_BYTES:
        raise ImageInputError("image.file_too_large", size_mb=len(data) / 2**20, limit_mb=MAX_FILE_BYTES // 2**20)
    walker = _WALKERS.get(fmt)
    if walker is not None:
        walker(data)


def _checked(fmt: str, factory):
    """Pillow's open factory for `fmt`, preceded by check_structure on the whole file (at most MAX_FILE_BYTES)."""
    def open_checked(fp, filename=None, *args):
        start = fp.tell()
        data = fp.read(MAX_FILE_BYTES + 1)
        check_structure(data, fmt)
        fp.seek(start)
        return factory(fp, filename, *args)

    open_checked.playground_checked = True
    return open_checked


def restrict_pil() -> None:
    """Bound every Image.open in this process (idempotent): ALLOWED_FORMATS only (the others are taken out of the
    list Image.open tries), check_structure before each allowed format's parser, and Pillow's bomb check at
    MAX_PIXELS (it raises DecompressionBombError above 2x MAX_IMAGE_PIXELS)."""
    Image.init()                          # register every plugin now, so none is added to the list later
    Image.ID[:] = [f for f in Image.ID if f in ALLOWED_FORMATS]
    for fmt in ALLOWED_FORMATS:
        factory, accept = Image.OPEN[fmt]
        if not getattr(factory, "playground_checked", False):
            Image.OPEN[fmt] = (_checked(fmt, factory), accept)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
    # Pillow warns between MAX_IMAGE_PIXELS and twice that; the refusal above 2x is the cap, so the warning says
    # nothing (it would only fill the server's log for every picture over 20 MP).
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
