"""README.md's layout block names the folders that are really here, and only those."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Folders that are never part of the layout: git's own, virtualenvs, render output, caches.
SCRATCH = re.compile(r"^(\.git|\.venv.*|venv|out|__pycache__|\..*cache|node_modules|.*\.egg-info)$")
# A path under stacks/ or cli/ named anywhere in the block, e.g. `stacks/fastapi/` or `cli/render.py`.
PROGRAM_PATH = re.compile(r"(?<![\w./-])((?:stacks|cli)/[\w./-]*)")


def layout_block() -> str:
    """The fenced code block under '## Layout'."""
    text = README.read_text()
    assert "\n## Layout\n" in text, "README.md has no '## Layout' section"
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```[^\n]*\n(.*?)^```", section, re.S | re.M)
    assert match, "README.md's '## Layout' section has no fenced code block"
    return match.group(1)


def listed_top_level_folders() -> set[str]:
    """Entries at the start of a line that end with '/': `stacks/`, `.ci/`, ..."""
    names = set()
    for line in layout_block().splitlines():
        if line and not line[0].isspace() and line.split()[0].endswith("/"):
            names.add(line.split()[0].rstrip("/"))
    return names


def real_top_level_folders() -> set[str]:
    """Top-level folders holding files git tracks or would track (untracked, not ignored)."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        names = {path.split("/", 1)[0] for path in out.split("\0") if "/" in path}
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (a copied tree): every folder here.
        names = {p.name for p in ROOT.iterdir()}
    return {n for n in names if (ROOT / n).is_dir() and not SCRATCH.match(n)}


def test_the_readme_layout_block_lists_top_level_folders():
    assert listed_top_level_folders() >= {"stacks", "components", "cli", "tests"}, \
        "README.md's layout block: top-level folders go at the start of a line, ending with '/'"


def test_every_top_level_folder_has_a_line_in_the_readme_layout():
    missing = sorted(real_top_level_folders() - listed_top_level_folders())
    assert not missing, (
        f"README.md '## Layout': add a line for {', '.join(f + '/' for f in missing)} "
        "(a top-level folder in the repo that the layout block doesn't name)")


def test_every_folder_the_readme_layout_lists_exists():
    gone = sorted(listed_top_level_folders() - real_top_level_folders())
    assert not gone, (
        f"README.md '## Layout': remove {', '.join(f + '/' for f in gone)} from the layout block "
        "(no such folder in the repo; say in prose if it is planned)")


def test_every_stacks_and_cli_path_in_the_readme_layout_exists():
    named = {m.rstrip(".,;:") for m in PROGRAM_PATH.findall(layout_block())}
    gone = sorted(p for p in named if not (ROOT / p).exists())
    assert not gone, (
        f"README.md '## Layout' names {', '.join(gone)}, which don't exist: "
        "fix the path or remove the line")
