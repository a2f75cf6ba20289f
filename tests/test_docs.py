"""The documents the code cites are in the repository, with the sections it cites.

Docstrings, comments, notebooks, benchmarks and tests cite ``docs/<file>.md`` and sections of it
(``§3``, ``§1.3``, ranges ``§2–3``, lists ``§1.4, §9``). Every cited file must exist under docs/
and every cited section must have a numbered heading there (``## 3.`` or ``### 3.2 ...``). A
citation of the maths or design notes by a path outside the repository (a bare ``MATH.md``, or
``shared/...``) fails too: a clone must contain what its code points to.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: where citations are looked for
SCAN_DIRS = ("bayesmoe", "notebooks", "benchmarks", "tests", "examples", "scripts")
SCAN_FILES = ("README.md", "CONTRIBUTING.md")
SUFFIXES = {".py", ".ipynb", ".md", ".toml", ".sh", ".txt"}
SKIP_PARTS = {".venv", ".git", "__pycache__", "results"}

_SEC = r"\d+(?:\.\d+)*"
_ITEM = rf"§\s*({_SEC})(?:\s*[–-]\s*({_SEC}))?"
#: a docs citation: the file, then optionally a list of sections / ranges
CITATION = re.compile(rf"docs/([\w-]+\.md)((?:\s*,?\s*{_ITEM})*)")
ITEM = re.compile(_ITEM)
HEADING = re.compile(rf"^#{{1,6}}\s+({_SEC})(?=[.\s])", re.MULTILINE)
#: citations of the maths/design notes that point outside the repository
OUTSIDE = re.compile(r"(?<![\w/])(?:MATH|DESIGN|STYLE)\.md|\bshared/[\w-]+\.md")


def parse_citations(text: str) -> list[tuple[str, list[str]]]:
    """``[(file, [section, ...]), ...]`` of every docs citation in ``text``; a range ``§a–b`` of
    top-level sections expands to a..b, a range of subsections to its two ends.

    Examples
    --------
    >>> parse_citations("see docs/math.md §2–4 and docs/design.md")
    [('math.md', ['2', '3', '4']), ('design.md', [])]
    """
    out = []
    for m in CITATION.finditer(text):
        sections: list[str] = []
        for lo, hi in ITEM.findall(m.group(2)):
            if hi and "." not in lo and "." not in hi and int(lo) < int(hi):
                sections += [str(k) for k in range(int(lo), int(hi) + 1)]
            else:
                sections += [lo] + ([hi] if hi else [])
        out.append((m.group(1), sections))
    return out


def headings(text: str) -> set[str]:
    """Numbers of the numbered Markdown headings: ``## 3. Title`` -> "3", ``### 3.2 T`` -> "3.2"."""
    return set(HEADING.findall(text))


def _text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":  # cell sources, JSON escapes undone
        nb = json.loads(raw)
        return "\n".join("".join(c.get("source", [])) for c in nb.get("cells", []))
    return raw


def _scanned_files() -> list[Path]:
    files = [ROOT / f for f in SCAN_FILES if (ROOT / f).exists()]
    for d in SCAN_DIRS:
        for p in sorted((ROOT / d).rglob("*")):
            if (
                p.is_file()
                and p.suffix in SUFFIXES
                and not SKIP_PARTS.intersection(p.relative_to(ROOT).parts)
                and p.resolve() != Path(__file__).resolve()
            ):
                files.append(p)
    return files


def test_parser_finds_sections_ranges_and_lists():
    text = (
        "a docs/math.md §1.3 b docs/math.md §4-5. c docs/math.md §1.2–1.3, §9 d docs/design.md e"
        "\n(docs/math.md, notation) docs/papers.md §10: x"
    )
    assert parse_citations(text) == [
        ("math.md", ["1.3"]),
        ("math.md", ["4", "5"]),
        ("math.md", ["1.2", "1.3", "9"]),
        ("design.md", []),
        ("math.md", []),
        ("papers.md", ["10"]),
    ]
    md = "# T\n## 1. Models\n### 1.1 Gaussian\n## 10. Settings\n### 10.2 S-B\n## Notation\n"
    assert headings(md) == {"1", "1.1", "10", "10.2"}
    assert OUTSIDE.search("as MATH.md §4 says") and OUTSIDE.search("see shared/papers.md")
    assert not OUTSIDE.search("docs/math.md §4")


def test_the_code_cites_docs():
    """Guard against the scan silently finding nothing (a moved folder, a broken pattern)."""
    n = sum(len(parse_citations(_text(p))) for p in _scanned_files())
    assert n >= 40, f"only {n} docs citations found; the scan is broken"


def test_cited_documents_and_sections_exist():
    problems = []
    cache: dict[str, set[str] | None] = {}
    for path in _scanned_files():
        for name, sections in parse_citations(_text(path)):
            if name not in cache:
                doc = DOCS / name
                cache[name] = headings(doc.read_text(encoding="utf-8")) if doc.exists() else None
            where = path.relative_to(ROOT)
            if cache[name] is None:
                problems.append(f"{where}: cites docs/{name}, which does not exist")
                continue
            problems += [
                f"{where}: cites docs/{name} §{s}, which has no heading there"
                for s in sections
                if s not in cache[name]
            ]
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("name", ["math.md", "design.md", "papers.md", "README.md"])
def test_docs_exist(name):
    assert (DOCS / name).is_file(), f"docs/{name} is missing"


def test_no_citation_points_outside_the_repository():
    bad = [
        f"{p.relative_to(ROOT)}: {m.group(0)!r}"
        for p in _scanned_files()
        for m in OUTSIDE.finditer(_text(p))
    ]
    assert not bad, "cite docs/math.md, docs/design.md or docs/papers.md instead:\n" + "\n".join(
        bad
    )
