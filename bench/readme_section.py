"""Rewrite one section of bench/README.md (from its `## ` heading to the next), leaving the others as they are."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def replace_section(heading: str, section: str, path: Path = README) -> Path:
    "Put `section` in `path` in place of the section whose heading starts with `## {heading}`, or append it."
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pat = re.compile(rf"^## {re.escape(heading)}.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _: section.strip() + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.strip() + "\n"
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return path
