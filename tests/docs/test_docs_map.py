"""README's map: every page under docs/ and every ``ml4t`` subcommand is named in it, and
each docs page opens by saying what it is for (a first paragraph, not a heading only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ml4t.backtest.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_names_every_docs_page() -> None:
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert len(pages) >= 10
    missing = [p for p in pages if f"docs/{p}" not in README]
    assert not missing, f"README's documentation map lacks {missing}"


def test_readme_names_every_subcommand() -> None:
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = sorted(commands.choices)
    assert {"run", "validate", "demo", "report", "journal", "replay", "sweep", "paper"} <= set(
        names
    )
    missing = [n for n in names if f"ml4t {n}" not in README]
    assert not missing, f"README's command list lacks {missing}"


def test_every_docs_page_starts_with_what_it_is_for() -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        lines = [line for line in page.read_text().splitlines() if line.strip()]
        assert lines[0].startswith("# "), page.name
        assert not lines[1].startswith("#"), f"{page.name}: a heading before any text"
        assert len(lines[1].split()) >= 8, f"{page.name}: say what the page is for first"
