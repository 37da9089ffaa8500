"""A user's ImageFolder from an uploaded zip, extracted safely.

Every entry is checked *before anything is written*: no absolute paths or `..`, no symlinks or special
files, no duplicate names, bounded entry count, per-file and total uncompressed size, and compression
ratio (zip bombs). While writing, the real byte count is enforced too (a header can lie about sizes).
Before any image is decoded, every image's pixel count is read from its header (zoo.images.probe: an allowed
format, its structure within zoo.image_limits' caps): each must be within the single-upload cap
(zoo.images.MAX_PIXELS) and all of them together within MAX_TOTAL_PIXELS, so a small zip of many
huge-but-compressible PNGs is refused at once instead of keeping a CPU busy. Decoding calls progress(done, total,
text), which may raise to cancel (the job worker's Cancel). The zip is extracted under the capped temp folder
(core.tempfiles), never the system's; messages name the visitor's own entries, never a server path.
"""
from __future__ import annotations

import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

from core.errors import InputError, term
from training.data.datasets import Split, stratified_split
from zoo.images import MAX_PIXELS, ImageInputError, flatten_alpha, open_image, probe
from core.tempfiles import roots, temp_root

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_TOTAL_PIXELS = 250_000_000    # decode budget of one zip: ~1 s per 25 megapixels on one core


class ZipRejected(InputError):
    """The zip is unsafe or not an ImageFolder; the message says why (keys zip.*)."""

    key = "zip.rejected"


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 5000
    max_file_bytes: int = 10 * 2**20
    max_total_bytes: int = 200 * 2**20
    max_ratio: float = 100.0          # uncompressed / compressed, per entry (deflate of real images is ~1-3x)
    max_depth: int = 4


def _is_ignored(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def check_zip(zf: zipfile.ZipFile, limits: ZipLimits = ZipLimits()) -> list[zipfile.ZipInfo]:
    """Validate every entry; return the image entries to extract. Raises ZipRejected."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ZipRejected("zip.entries", entries=len(infos), limit=limits.max_entries)
    total, seen, keep = 0, set(), []
    for info in infos:
        name = info.filename
        if "\x00" in name or "\\" in name:
            raise ZipRejected("zip.bad_name", name=name)
        p = PurePosixPath(name)
        if p.is_absolute() or name.startswith("/") or ".." in p.parts or (p.parts and p.parts[0].endswith(":")):
            raise ZipRejected("zip.outside", name=name)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)  # 0 when the archiver stored no file type (plain file)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ZipRejected("zip.special", name=name)
        if info.flag_bits & 0x1:
            raise ZipRejected("zip.encrypted", name=name)
        if len(p.parts) > limits.max_depth + 1:
            raise ZipRejected("zip.too_deep", name=name, depth=limits.max_depth)
        key = name.rstrip("/").lower()
        if key in seen:
            raise ZipRejected("zip.twice", name=name)
        seen.add(key)
        if info.is_dir() or _is_ignored(name):
            continue
        if info.file_size > limits.max_file_bytes:
            raise ZipRejected("zip.file_too_large", name=name, size=info.file_size, limit=limits.max_file_bytes)
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            raise ZipRejected("zip.bomb", name=name, ratio=info.file_size / info.compress_size)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ZipRejected("zip.too_large", limit_mb=limits.max_total_bytes // 2**20)
        if p.suffix.lower() in IMAGE_EXTS:
            keep.append(info)
    if not keep:
        raise ZipRejected("zip.no_images")
    return keep


def extract_zip_safely(zip_path: str, dest_dir: str, limits: ZipLimits = ZipLimits()) -> list[str]:
    """Extract the image entries of a checked zip into dest_dir; returns the written paths."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:      # an OSError's text names the server's path: not shown
        if isinstance(exc, zipfile.BadZipFile):
            raise ZipRejected("zip.damaged", detail=str(exc)) from None
        raise ZipRejected("zip.unreadable") from None
    with zf:
        entries = check_zip(zf, limits)
        dest = Path(dest_dir).resolve()
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for info in entries:
            target = (dest / info.filename).resolve()
            if dest not in target.parents:  # belt and braces after the name checks
                raise ZipRejected("zip.outside", name=info.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            budget = info.file_size
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(1 << 16):
                        budget -= len(chunk)
                        if budget < 0:
                            raise ZipRejected("zip.longer", name=info.filename)
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ZipRejected("zip.corrupt", name=info.filename, detail=str(exc)) from None
            written.append(str(target))
        return written


def header_pixels(path: Path) -> int:
    """Width x height from the image's header alone (nothing decoded); ZipRejected if it cannot be read or is
    over the single-image cap."""
    try:
        _, w, h = probe(path)             # format allow-list and structure caps first (zoo.image_limits)
    except ImageInputError as exc:
        raise ZipRejected("zip.bad_image", name=f"{path.parent.name}/{path.name}",
                          why=term(exc.key, **exc.values)) from None
    if w * h > MAX_PIXELS:
        raise ZipRejected("zip.image_too_large", name=f"{path.parent.name}/{path.name}", width=w, height=h,
                          limit_mp=MAX_PIXELS // 1_000_000)
    return w * h


def load_image_folder(root: str, size: tuple[int, int] = (28, 28), channels: int = 1, progress=None,
                      max_total_pixels: int = MAX_TOTAL_PIXELS):
    """An ImageFolder (root/<class>/<image>) as tensors: x (N, C, H, W) in [0, 1], y (N,), classes (sorted)."""
    root_p = Path(root)
    class_dirs = sorted(d for d in root_p.iterdir() if d.is_dir() and not _is_ignored(d.name))
    # A zip that wraps everything in one top folder: descend into it.
    if len(class_dirs) == 1 and not any(f.suffix.lower() in IMAGE_EXTS for f in class_dirs[0].iterdir() if f.is_file()):
        return load_image_folder(str(class_dirs[0]), size, channels, progress, max_total_pixels)
    listed = []
    for d in class_dirs:
        files = sorted(f for f in d.rglob("*")
                       if f.is_file() and f.suffix.lower() in IMAGE_EXTS and not _is_ignored(f.name))
        if files:
            listed.append((d, files))
    total_px = 0
    for _, files in listed:                # headers first: refuse before decoding anything
        for f in files:
            total_px += header_pixels(f)
    if total_px > max_total_pixels:
        raise ZipRejected("zip.too_many_pixels", megapixels=total_px / 1e6, limit_mp=max_total_pixels // 1_000_000)
    n_files = sum(len(f) for _, f in listed)
    import torchvision.transforms.v2.functional as TF  # on first use: torchvision costs the server ~1 s at start

    classes, xs, ys = [], [], []
    for d, files in listed:
        label = len(classes)
        classes.append(d.name)
        for f in files:
            if progress is not None:
                progress(len(xs), n_files, term("job.zip.decoding", i=len(xs) + 1, n=n_files))
            try:
                img = flatten_alpha(open_image(str(f)))
            except ImageInputError as exc:
                raise ZipRejected("zip.bad_image", name=f"{d.name}/{f.name}", why=term(exc.key, **exc.values)) from None
            img = img.convert("L" if channels == 1 else "RGB")
            t = TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True)
            xs.append(TF.resize(t, list(size), antialias=True))
            ys.append(label)
    if len(classes) < 2:
        raise ZipRejected("zip.two_classes")
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), classes


def extraction_parent(zip_path: str) -> str:
    """Where a zip is extracted: in the capped temp folder (core.tempfiles), never the system's. Inside the zip's
    own folder when that is one of the folders the temp cap deletes as a whole (a Gradio upload, <root>/<hash>/),
    so the extracted files share the zip's protection while its job is queued or running (jobs/queue.py
    protects the job's inputs); anywhere else (a zip given on the command line, a test's), the temp root itself."""
    folder = Path(zip_path).resolve().parent
    for root, _ in roots():
        root = root.resolve()
        if folder.parent == root:
            return str(folder)
    return str(temp_root())


def load_zip_dataset(zip_path: str, size: tuple[int, int] = (28, 28), channels: int = 1, test_fraction: float = 0.2,
                     workdir: str | None = None, progress=None):
    """Safe extract + load + seeded stratified split -> training.data.datasets.Split."""
    with tempfile.TemporaryDirectory(prefix="zip-", dir=workdir or extraction_parent(zip_path)) as tmp:
        extract_zip_safely(zip_path, tmp)
        x, y, classes = load_image_folder(tmp, size, channels, progress)
    if x.shape[0] < 2 * len(classes):
        raise ZipRejected("zip.too_few")
    tr, te = stratified_split(y, test_per_class=test_fraction)
    if len(te) == 0:
        te = tr[:1]
    return Split(x[tr], y[tr], x[te], y[te], tuple(classes))
