"""The documentation stays true: its code runs and its metadata parses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import integration_automation_patterns as package

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/**/*.md")],
    key=lambda p: p.relative_to(ROOT).as_posix(),
)
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Return each fenced ``python`` block with the line it starts on."""
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)
    ]


def test_block_extraction_finds_only_python_fences() -> None:
    """Only ``python`` fences are collected, with their starting line."""
    text = "intro\n```python\nx = 1\n```\n```text\nnot code\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n")]


@pytest.mark.parametrize(
    "document",
    [d for d in DOCUMENTS if python_blocks(d.read_text(encoding="utf-8"))],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_python_blocks_in_docs_run(
    document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every python block of a document runs, in order, in one namespace."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_{document.stem}"}

    for line, code in python_blocks(document.read_text(encoding="utf-8")):
        where = f"{document.relative_to(ROOT)}:{line}"
        exec(compile(code, where, "exec"), namespace)


def test_citation_is_valid_cff() -> None:
    """CITATION.cff holds the keys CFF 1.2.0 requires and the current version."""
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))

    for key in ("cff-version", "message", "title", "authors"):
        assert citation[key], key
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == package.__version__
    assert citation["license"] == "MIT"
    assert citation["repository-code"].startswith("https://")
    assert citation["keywords"]
    assert all("name" in a or "family-names" in a for a in citation["authors"])


def test_changelog_names_the_current_version() -> None:
    """The changelog has an entry for what is being built."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog or package.__version__ in changelog


def test_docs_links_point_at_files_that_exist() -> None:
    """Relative links in README and docs resolve to real files."""
    broken = []
    for document in [*DOCUMENTS, ROOT / "ECOSYSTEM.md"]:
        text = document.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            if not (document.parent / target).exists():
                broken.append(f"{document.relative_to(ROOT)} -> {target}")
    assert broken == []
