"""English and Simplified Chinese (issue #25): a request's language (core.i18n.language_of), one catalogue per
language with the same keys and placeholders, every key the code names is catalogued and every entry is used, the
page's gr.I18n strings exist in both languages, and Chinese in the server's pictures (core/fonts.py)."""
from __future__ import annotations

import ast
import json
import re
import string
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "zoo", "playground", "training", "jobs", "ui", "look_inside")
# Functions whose first argument is a catalogue key: core.i18n.t and N_, ui.i18n.label, core.errors.render.
KEY_FUNCTIONS = {"t", "N_", "label", "render"}


def _catalogue(language: str) -> dict[str, str]:
    return json.loads((ROOT / "core" / "locales" / f"{language}.json").read_text(encoding="utf-8"))


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _trees() -> dict[Path, ast.AST]:
    sources = [p for d in PACKAGES if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py")]
    return {p: ast.parse(p.read_text(encoding="utf-8")) for p in [*sources, ROOT / "app.py"]}


# ---- the request's language ------------------------------------------------------------------------------------

@pytest.mark.parametrize("header, chosen, want", [
    (None, None, "en"),
    ("", None, "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", None, "en"),
    ("zh-Hans", None, "zh"),
    ("zh", None, "zh"),
    ("zh_CN", None, "zh"),
    ("ZH-cn", None, "zh"),
    ("zh-TW,zh;q=0.9", None, "zh"),                # Traditional Chinese readers get Simplified, as the page does
    ("fr-FR,fr;q=0.9,de;q=0.8", None, "en"),       # neither of ours: English
    ("fr-FR,zh-CN;q=0.5,en;q=0.4", None, "zh"),    # the best of ours by q-value, not by position
    ("en;q=0.2,zh-CN;q=0.9", None, "zh"),
    ("en;q=0.5,zh;q=0.5", None, "en"),             # a tie: the header's order
    ("zh-CN;q=0,en", None, "en"),                  # q=0: "not this one"
    ("zh-CN;q=abc,en;q=0.1", None, "en"),          # a malformed q is left out
    ("*", None, "en"),
    ("en-US", "zh", "zh"),                         # the page's choice first
    ("zh-CN", "en", "en"),
    ("zh-CN", "fr", "zh"),                         # a choice that is not ours: the header decides
    ("zh-CN", "", "zh"),
    ("zh-CN", "<script>", "zh"),
    (",,;;q=,zh", None, "zh"),
])
def test_language_of(header, chosen, want):
    from core.i18n import language_of

    assert language_of(header, chosen) == want


def test_t_renders_falls_back_and_never_raises():
    from core.i18n import t

    assert t("tab.tensors", "zh") == "张量" and t("tab.tensors", "en") == "Tensors"
    assert t("tab.tensors", "fr") == "Tensors"                               # no such catalogue: English
    assert t("start.lives_in", "zh", tab="张量") == "在本应用中：**张量** 标签页。"
    assert "{tab}" in t("start.lives_in", "en")                               # a missing value stays visible
    assert t("no.such_key", "zh") == "no.such_key"
    assert t("error.internal", "en", id=1, extra=2).count("1") >= 1          # an extra value is ignored


# ---- the catalogues --------------------------------------------------------------------------------------------

def test_the_catalogues_have_the_same_keys_and_placeholders():
    en, zh = _catalogue("en"), _catalogue("zh")
    assert sorted(set(en) - set(zh)) == [], "keys core/locales/zh.json does not translate"
    assert sorted(set(zh) - set(en)) == [], "keys in zh.json that en.json does not have"
    differ = [k for k in en if _fields(en[k]) != _fields(zh[k])]
    assert differ == [], f"placeholders differ between en.json and zh.json: {differ}"
    words = re.compile(r"[A-Za-z]{3,}")     # an entry that is only placeholders ("{problem}") needs no translation
    untranslated = [k for k in en if zh[k] == en[k] and words.search(re.sub(r"\{[^}]*\}", "", en[k]))]
    assert untranslated == [], f"zh.json entries still in English: {untranslated}"


def test_every_key_the_code_names_is_catalogued_and_every_entry_is_used():
    """The keys named through t(), N_(), label() and render() are in the catalogue (the Start-here tab's own
    'tutorial.' strings come from ui/tutorial.toml instead); every catalogue entry is named somewhere in the code
    (tests/test_errors.py holds the error keys to the stricter rules of core/errors.py)."""
    catalogue = _catalogue("en")
    named, constants = set(), set()
    for tree in _trees().values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in KEY_FUNCTIONS and isinstance(node.args[0].value, str):
                    named.add(node.args[0].value)
    named = {k for k in named if "." in k and not k.startswith("tutorial.")}
    assert sorted(named - set(catalogue)) == [], "keys the code names that core/locales/en.json lacks"
    assert sorted(set(catalogue) - constants) == [], "catalogue entries no code names"


def test_the_pages_translations_cover_every_label_in_both_languages():
    from ui.i18n import TITLE_KEYS, page_i18n

    translations = page_i18n().translations_dict
    assert set(translations) == {"en", "zh"} and set(translations["en"]) == set(translations["zh"])
    labels = set(TITLE_KEYS.values())
    for tree in _trees().values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "label" and node.args:
                if isinstance(node.args[0], ast.Constant):
                    labels.add(node.args[0].value)
    assert labels - set(translations["en"]) == set(), "label() keys the page cannot translate"
    # Gradio's front end formats these as ICU messages: a brace would be read as a placeholder
    braces = [k for lang in translations for k, v in translations[lang].items()
              if ("{" in v or "}" in v) and (k in labels or k.startswith("tutorial."))]
    assert braces == []


# ---- Chinese in the server's pictures --------------------------------------------------------------------------

def test_matplotlib_draws_chinese_without_missing_glyphs():
    from core import fonts

    if not fonts.available():
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei, as packages.txt and .ci/run do): "
                    "pictures then write their text in English")
    from zoo.pictures import fig_to_array, figure

    fig = figure(3, 1.5)          # the server's charts come from zoo.pictures.figure: it sets the font up
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, -1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax.set_title("损失曲线 loss")
        ax.set_xlabel("步数 step")
        pixels = fig_to_array(fig)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert missing == [] and pixels.shape[2] == 3
    assert fonts.text_language("zh") == "zh"
    import matplotlib

    assert matplotlib.rcParams["font.sans-serif"][0] == "DejaVu Sans"    # Latin text keeps its font


def test_pil_draws_chinese_with_the_cjk_font_or_falls_back_to_english(monkeypatch):
    import numpy as np
    from PIL import Image, ImageDraw

    from core import fonts

    if fonts.available():
        font = fonts.pil_font(20)
        img = Image.new("L", (80, 30), 0)
        ImageDraw.Draw(img).text((2, 2), "张量", fill=255, font=font)
        assert (np.asarray(img) > 0).sum() > 40 and font.getmask("张").getbbox()
        assert font.getname()[0] in fonts.FAMILIES
    # no CJK font (PLAYGROUND_CJK_FONT='' turns it off): pictures are written in English, PIL keeps its own font
    monkeypatch.setenv("PLAYGROUND_CJK_FONT", "")
    fonts.cjk_font_file.cache_clear()
    fonts.pil_font.cache_clear()
    try:
        assert not fonts.available() and fonts.text_language("zh") == "en" and fonts.text_language("en") == "en"
        assert fonts.pil_font(12) is not None
    finally:
        monkeypatch.delenv("PLAYGROUND_CJK_FONT")
        fonts.cjk_font_file.cache_clear()
        fonts.pil_font.cache_clear()


def test_the_cjk_font_comes_from_the_system_not_the_repo():
    exts = {".ttf", ".ttc", ".otf", ".woff", ".woff2"}
    tracked = [p for d in PACKAGES if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*") if p.suffix.lower() in exts]
    assert tracked == []
    assert "fonts-wqy-microhei" in (ROOT / "packages.txt").read_text().split()
    assert "packages.txt" in (ROOT / ".ci" / "run").read_text()
