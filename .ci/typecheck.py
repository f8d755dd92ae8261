"""Type-check the public modules (scdd/, registry/, cli/) with mypy, as the installed package sees them.

`registry/` is installed as `scdd.registry` and `cli/` as `scdd.cli` (`[tool.setuptools] package-dir`),
and an editable install maps them through an import hook that mypy cannot follow. So this builds the
installed layout as a tree of links under build/typecheck/, runs mypy on it (settings in
`[tool.mypy]`), and prints each path as the source file's own.
Usage: python .ci/typecheck.py [extra mypy arguments]
"""

import shutil
import subprocess
import sys
from pathlib import Path

try:  # Python 3.11+; the `tomli` backport before
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
CHECKED = ("scdd", "scdd.registry", "scdd.cli")


def build_tree() -> dict[str, str]:
    """Link each checked package's folder into TREE at its installed place; returns tree path -> source path."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)  # removes the links, never what they point to
    top = TREE / "scdd"
    top.mkdir(parents=True, exist_ok=True)
    for entry in (ROOT / package_dir["scdd"]).iterdir():  # the top package's files and subpackages
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    paths = {}
    for package in CHECKED[1:]:
        (TREE / package.replace(".", "/")).symlink_to(ROOT / package_dir[package])
        paths[f"build/typecheck/{package.replace('.', '/')}/"] = f"{package_dir[package]}/"
    paths["build/typecheck/scdd/"] = f"{package_dir['scdd']}/"
    return paths


def main() -> int:
    paths = build_tree()
    result = subprocess.run([sys.executable, "-m", "mypy", *sys.argv[1:]], cwd=ROOT, capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        for tree_path, source_path in paths.items():  # most specific first
            if line.startswith(tree_path):
                line = source_path + line[len(tree_path) :]
                break
        print(line)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
