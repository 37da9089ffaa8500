"""The tutorial's table of contents for the Start-here tab, read from ui/tutorial.toml (a file a translator edits):
its chapters and sections in order, each section's text in both languages, its code as printed and a runnable
version, and the tab where it lives. Pure data: no gradio here (ui/start_here.py lays it out)."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.i18n import LANGUAGES, N_, t

SOURCE = Path(__file__).resolve().parent / "tutorial.toml"
# The app's tabs (app.py TABS: the id Gradio selects) -> the catalogue key of the tab's name.
TAB_KEYS = {
    "start-here": N_("tab.start_here"),
    "classify": N_("tab.classify"),
    "tensors": N_("tab.tensors"),
    "autograd": N_("tab.autograd"),
    "autoencoder": N_("tab.autoencoder"),
    "gan": N_("tab.gan"),
    "data": N_("tab.data"),
    "fine-tune": N_("tab.finetune"),
    "ensembles-&-compression": N_("tab.ensembles"),
    "look-inside": N_("tab.look_inside"),
}
# "Go to the tab" buttons, one key per tab (a gr.I18n string is one key: it takes no values).
GO_KEYS = {
    "classify": N_("start.go_classify"),
    "tensors": N_("start.go_tensors"),
    "autograd": N_("start.go_autograd"),
    "autoencoder": N_("start.go_autoencoder"),
    "gan": N_("start.go_gan"),
    "data": N_("start.go_data"),
    "fine-tune": N_("start.go_finetune"),
    "ensembles-&-compression": N_("start.go_ensembles"),
    "look-inside": N_("start.go_look_inside"),
}


@dataclass(frozen=True)
class Section:
    """One section of the tutorial: texts by language, code as printed and runnable, the tab it lives in."""

    id: str
    chapter: str
    title: dict
    text: dict
    note: dict
    printed: str
    printed_language: str
    runnable: str
    tab: str

    @property
    def anchor(self) -> str:
        """The DOM id of the section's block (the contents link to it)."""
        return "tutorial-" + re.sub(r"[^a-z0-9]+", "-", f"{self.chapter}-{self.id}".lower()).strip("-")

    def short(self, language: str) -> str:
        """The title up to its colon: '2.1 Tensor' for the contents."""
        return re.split(r"：|: ", self.title[language], maxsplit=1)[0]


@dataclass(frozen=True)
class Chapter:
    id: str
    title: dict
    sections: tuple[Section, ...]


@lru_cache(maxsize=1)
def chapters() -> tuple[Chapter, ...]:
    """The tutorial's chapters in order (read once per process)."""
    data = tomllib.loads(SOURCE.read_text(encoding="utf-8"))
    out = []
    for ch in data["chapter"]:
        sections = tuple(Section(
            id=s["id"], chapter=ch["id"], title=s["title"], text=s["text"], note=s.get("note", {}),
            printed=s.get("printed", "").strip("\n"), printed_language=s.get("printed_language", "python"),
            runnable=s.get("runnable", "").strip("\n") + ("\n" if s.get("runnable") else ""), tab=s.get("tab", ""))
            for s in ch["section"])
        out.append(Chapter(id=ch["id"], title=ch["title"], sections=sections))
    return tuple(out)


def sections() -> list[Section]:
    return [s for ch in chapters() for s in ch.sections]


def section_markdown(s: Section, language: str) -> str:
    """A section's heading, sentences, the note on the tutorial, and where it lives in the app."""
    parts = [f"### {s.title[language]}", s.text[language]]
    if s.note:
        parts.append(f"> **{t('start.note', language)}** {s.note[language]}")
    if s.tab:
        parts.append(t("start.lives_in", language, tab=t(TAB_KEYS[s.tab], language)))
    return "\n\n".join(parts)


def contents_markdown(language: str) -> str:
    """The table of contents: one line per chapter, its sections linked to their blocks."""
    lines = [f"## {t('start.contents', language)}", ""]
    for ch in chapters():
        links = " · ".join(f"[{s.short(language)}](#{s.anchor})" for s in ch.sections)
        lines.append(f"- **{ch.title[language]}**: {links}")
    return "\n".join(lines)


def page_translations() -> dict[str, dict[str, str]]:
    """{language: {key: Markdown}} for gr.I18n: the contents, every chapter's heading and every section."""
    out = {}
    for language in LANGUAGES:
        d = {"tutorial.contents": contents_markdown(language)}
        for ch in chapters():
            d[f"tutorial.chapter.{ch.id}"] = f"## {ch.title[language]}"
            for s in ch.sections:
                d[f"tutorial.section.{s.chapter}.{s.id}"] = section_markdown(s, language)
        out[language] = d
    return out
