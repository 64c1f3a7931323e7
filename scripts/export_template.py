"""Export the notebooks of mlprod's project template (mlprod/templates/project) into its packages.

The template ships each example's package as nbdev exports it, so that a new project is in sync from its
first commit without nbdev. After editing a template notebook (`<example>/nbs/*.ipynb.jinja`), run

    .venv/bin/python scripts/export_template.py

For each example it renders a project with stand-in names, runs nbdev-clean, nbdev-export and the project's
scripts/make_fixtures.py there, and copies the cleaned notebooks, the exported modules and the fixtures back
into the template with the names turned back into `{{ project_name }}` / `{{ package_name }}`. The golden
predictions of a changed model come from the project itself: render one, run `make golden` there, review the
diff and copy tests/golden/ back. tests/test_new.py checks that every example renders in sync.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "mlprod" / "templates" / "project"
BIN = Path(sys.executable).parent
PROJECT, PACKAGE = "zzproj-zz", "zzproj_zz"  # stand-in names, found nowhere else in the template


def templated(text: str) -> str:
    "The stand-in names turned back into the template's variables."
    return text.replace(PACKAGE, "{{ package_name }}").replace(PROJECT, "{{ project_name }}")


def export(example: str) -> list[str]:
    "Render `example`, export it, copy back what changed; the template files rewritten."
    sys.path.insert(0, str(ROOT))
    from mlprod.new import render

    written = []
    with tempfile.TemporaryDirectory(prefix="mlprod-template-") as d:
        project = render(Path(d) / PROJECT, PROJECT, example)
        for tool in ("nbdev-clean", "nbdev-export"):
            subprocess.run([str(BIN / tool)], cwd=project, check=True, capture_output=True)
        subprocess.run(
            [sys.executable, "scripts/make_fixtures.py"], cwd=project, check=True, capture_output=True
        )
        src = TEMPLATE / example
        pairs = [(nb, src / "nbs" / (nb.name + ".jinja")) for nb in sorted((project / "nbs").glob("*.ipynb"))]
        pairs += [
            (py, src / "{{ package_name }}" / (py.name + ".jinja"))
            for py in sorted((project / PACKAGE).glob("*.py"))
        ]
        for made, dest in pairs:
            text = templated(made.read_text(encoding="utf-8"))
            if not dest.exists() or dest.read_text(encoding="utf-8") != text:
                dest.write_text(text, encoding="utf-8")
                written.append(str(dest.relative_to(ROOT)))
        for fixture in sorted((project / "tests" / "fixtures").glob("*")):
            dest = src / "tests" / "fixtures" / fixture.name
            if not dest.exists() or dest.read_bytes() != fixture.read_bytes():
                shutil.copyfile(fixture, dest)
                written.append(str(dest.relative_to(ROOT)))
    return written


if __name__ == "__main__":
    for ex in sys.argv[1:] or ["tabular", "recommend", "none"]:
        for path in export(ex):
            print(f"wrote {path}")
