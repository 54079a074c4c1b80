"""The documentation as tests read it: the README (the front door) and the reference pages in docs/.

Generated tables sit between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in exactly one of
these files; tests compare them with what the code generates, so a stale table fails ``make test``.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

__all__ = ["DOCS", "README", "ROOT", "all_files", "heading_anchors", "page", "replace_section", "section", "slugify"]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def all_files() -> list[Path]:
    """README.md, then every page of docs/ (sorted)."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page(name: str) -> str:
    """The text of ``README.md`` or of ``docs/<name>``."""
    return README.read_text() if name == "README.md" else (DOCS / name).read_text()


def section(marker: str) -> str:
    """The generated section ``marker`` (stripped), from the one file that holds it."""
    start, end = f"<!-- {marker}:start -->\n", f"\n<!-- {marker}:end -->"
    holders = [p for p in all_files() if start in p.read_text()]
    assert len(holders) == 1, f"{marker}: in {[p.name for p in holders]} (expected exactly one file)"
    text = holders[0].read_text()
    assert end in text, f"{marker}: no end marker in {holders[0].name}"
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def replace_section(marker: str, text: str) -> None:
    """Write ``text`` as the generated section ``marker`` of the one file that holds it."""
    start, end = f"<!-- {marker}:start -->\n", f"\n<!-- {marker}:end -->"
    (holder,) = [p for p in all_files() if start in p.read_text()]
    before, rest = holder.read_text().split(start, 1)
    tail = rest.split(end.lstrip("\n"), 1)[1]  # the end marker, with or without a section before it
    holder.write_text(before + start + text.strip() + end + tail)


def slugify(text: str) -> str:
    """The anchor of a heading as MkDocs' ``toc`` extension makes it (Python-Markdown's slugify)."""
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def heading_anchors(text: str) -> set[str]:
    """Anchors of the headings of a Markdown text (fenced code skipped)."""
    anchors: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^#{1,6} (.+)$", line)):
            anchors.add(slugify(match.group(1)))
    return anchors
