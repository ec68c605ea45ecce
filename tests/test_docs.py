"""The documentation is the repository's own: every pointer into docs/ resolves, and none leads outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".txt", ".js", ".html", ".css", ".cfg"}
OUTSIDE = re.compile(r"METHOD\.md|DESIGN\.md|STYLE\.md|PEERS\.md|\.\./shared")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    files = [REPO / n for n in names if not n.startswith("models/")]
    return [f for f in files if f.is_file() and (f.suffix in TEXT_SUFFIXES or f.name in ("Makefile", "run"))]


def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(path: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^#{1,6} (.+)$", path.read_text(), re.MULTILINE)]


def test_nothing_points_outside_the_repository() -> None:
    offenders = {
        str(f.relative_to(REPO))
        for f in tracked_text_files()
        if f.name != "test_docs.py" and OUTSIDE.search(f.read_text(errors="replace"))
    }
    assert not offenders, sorted(offenders)


def test_every_pointer_into_docs_names_a_real_page_and_section() -> None:
    broken = []
    for f in tracked_text_files():
        text = f.read_text(errors="replace")
        for m in re.finditer(r"docs/([a-z_]+\.md)(?:#([\w-]+)|, \"([^\"]+)\")?", text):
            page = DOCS / m.group(1)
            if not page.is_file():
                broken.append(f"{f.relative_to(REPO)}: {m.group(0)}")
            elif m.group(2) and m.group(2) not in {slug(h) for h in headings(page)}:
                broken.append(f"{f.relative_to(REPO)}: {m.group(0)} (no such anchor)")
            elif m.group(3) and m.group(3) not in headings(page):
                broken.append(f"{f.relative_to(REPO)}: {m.group(0)} (no such section)")
    assert not broken, broken


@pytest.mark.parametrize("page", sorted([*DOCS.glob("*.md"), REPO / "README.md"]), ids=lambda p: p.name)
def test_links_in_the_documentation_resolve(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in {slug(h) for h in headings(dest)}:
            broken.append(target)
    assert not broken, broken
