"""Chinese text in the pictures the server draws: find a CJK font installed on the machine (Debian's
fonts-wqy-microhei or fonts-noto-cjk: packages.txt on a Space, .ci/run in CI; never a font file in the repo), add it
to matplotlib's fallback list after DejaVu Sans, and give PIL a font for it. Where none is installed, text_language()
says to draw English instead, so a picture never shows boxes for missing glyphs.

Nothing runs at import; matplotlib is imported only by use_in_matplotlib() (most requests draw no chart).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from core.settings import settings

# Families with Simplified Chinese, best first: Debian's Noto CJK and WenQuanYi, then macOS and Windows fonts.
FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
            "Droid Sans Fallback", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "SimHei")
# Where those packages put their files (looked at first: no fontconfig call needed).
KNOWN_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",        # fonts-noto-cjk
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",                 # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",                   # fonts-wqy-zenhei
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",      # fonts-droid-fallback
    "/System/Library/Fonts/PingFang.ttc",                             # macOS
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:/Windows/Fonts/msyh.ttc",                                      # Windows
    "C:/Windows/Fonts/simhei.ttf",
)
SAMPLE = "张量"
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")   # CJK radicals to ideographs, full-width forms


def has_cjk(text: str) -> bool:
    """Whether a text has Chinese (CJK) characters that DejaVu Sans cannot draw."""
    return bool(_CJK.search(text or ""))


@lru_cache(maxsize=1)
def cjk_font_file() -> str | None:
    """The file of an installed CJK font (PLAYGROUND_CJK_FONT if set; '' turns them off), or None."""
    chosen = settings().cjk_font
    if chosen is not None:
        return chosen if chosen and Path(chosen).is_file() else None
    for path in KNOWN_FILES:
        if Path(path).is_file():
            return path
    return _fc_match()


def _fc_match() -> str | None:
    """fontconfig's file for a Chinese font (fc-list :lang=zh), preferring the FAMILIES order."""
    fc = shutil.which("fc-list")
    if not fc:
        return None
    try:
        out = subprocess.run([fc, ":lang=zh", "family", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = {}
    for line in out.splitlines():
        file, _, families = line.partition(":")
        for family in families.split(","):
            found.setdefault(family.strip(), file.strip())
    for family in FAMILIES:
        if family in found:
            return found[family]
    return next(iter(found.values()), None)


def available() -> bool:
    return cjk_font_file() is not None


def text_language(language: str) -> str:
    """The language to write a picture's text in: Chinese only where a CJK font can draw it, else English."""
    return language if language != "zh" or available() else "en"


@lru_cache(maxsize=1)
def use_in_matplotlib() -> str | None:
    """Add the CJK font to matplotlib: after DejaVu Sans in font.sans-serif, and after the generic family in
    font.family, so Latin text keeps DejaVu Sans and Chinese characters fall back to the CJK font (matplotlib >= 3.6
    falls back glyph by glyph). Returns the family's name, or None (nothing changed) where no CJK font is
    installed. Once per process."""
    path = cjk_font_file()
    if path is None:
        return None
    import matplotlib
    from matplotlib import font_manager

    try:
        font_manager.fontManager.addfont(path)    # a font installed after matplotlib cached its font list
    except (OSError, RuntimeError, ValueError):
        return None
    # a .ttc holds several faces (Noto CJK: JP, KR, SC, TC, HK): the Simplified Chinese one by name
    names = {e.name for e in font_manager.fontManager.ttflist if Path(e.fname) == Path(path)}
    family = next((f for f in FAMILIES if f in names), None) or min(names, default=None)
    if family is None:
        return None
    rest = [f for f in matplotlib.rcParams["font.sans-serif"] if f not in ("DejaVu Sans", family)]
    matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans", family, *rest]
    # matplotlib falls back glyph by glyph across font.family's entries (each resolved to one font), not across
    # the sans-serif list: the CJK family goes after the generic one, so Latin text keeps DejaVu Sans
    families = [f for f in matplotlib.rcParams["font.family"] if f != family]
    matplotlib.rcParams["font.family"] = [*families, family]
    return family


def with_cjk(generic: str) -> list[str]:
    """A text's font.family for matplotlib that names one family (`generic`, e.g. "monospace"): the CJK family after
    it where one is installed, so Chinese characters fall back to it (font.family set on a text replaces the
    rcParams' list, and with it use_in_matplotlib's fallback)."""
    family = use_in_matplotlib()
    return [generic, family] if family else [generic]


@lru_cache(maxsize=8)
def pil_font(size: int = 12):
    """A PIL font that draws Chinese at this size (the CJK font), or PIL's own font where none is installed
    (then draw English: text_language)."""
    from PIL import ImageFont

    path = cjk_font_file()
    if path:
        faces = []
        for index in range(8):   # a .ttc's faces (Noto CJK: JP, KR, SC, TC, HK): the Simplified Chinese one
            try:
                faces.append(ImageFont.truetype(path, size, index=index))
            except OSError:
                break
        rank = {f: i for i, f in enumerate(FAMILIES)}
        if faces:
            return min(faces, key=lambda font: rank.get(font.getname()[0], len(rank)))
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):   # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()
