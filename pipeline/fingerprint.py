"""Package code counts as code: a short hash of the project source a job runs.

Snakemake reruns a job when its script changes, but not when a package module the script
imports does (doubling a term in creativity/scoring.py would leave every table stale). A
rule puts `code=fingerprint.code_version(script)` in its params, so Snakemake's params
trigger fires when any project module the script imports, directly or through others,
changes, and only then: an edit to a module the job never imports reruns nothing.

The imports are read from the source (ast), not by importing it: a module is a project
module when its file lies under the project root; importing a module runs its packages'
__init__.py, so those count too. Imports inside functions count as well (a lazy import is
still code the job may run).
"""
from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of a project module or package `name`, or None if it is not one."""
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _package_inits(name: str) -> list[str]:
    """The packages that importing `name` runs first: a.b.c -> a, a.b."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(path: Path, name: str, root: Path) -> tuple[str, ...]:
    """Project modules the source at `path` (module `name`, "" for a script) imports."""
    return _parsed_imports(path, name, root, path.stat().st_mtime_ns)


@lru_cache(maxsize=None)  # rules ask for the same modules many times in one parse
def _parsed_imports(path: Path, name: str, root: Path, mtime_ns: int) -> tuple[str, ...]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y: relative to this module's package
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names]  # a submodule, if it is one
    return tuple(m for m in found if m and _module_file(m, root))


def source_files(*sources, root: Path = ROOT) -> list[Path]:
    """Every project source file the given modules, packages (all their modules) or script
    files (a path relative to `root`, or absolute) run when imported or executed, following imports."""
    root = Path(root).resolve()
    todo, files = [], set()
    for source in sources:
        if str(source).endswith(".py"):
            path = (root / source).resolve()  # an absolute source stays itself
            files.add(path)
            todo += _imports(path, "", root)
            continue
        if _module_file(source, root) is None:
            raise ValueError(f"{source}: no such module or package under {root}")
        todo.append(source)
        package_dir = root.joinpath(*source.split("."))
        if package_dir.is_dir():  # a whole package: every module in it
            todo += [".".join(p.relative_to(root).with_suffix("").parts) for p in package_dir.rglob("*.py")
                     if p.name != "__init__.py"]
    seen = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name, root)
        files.add(path)
        todo += _package_inits(name) + list(_imports(path, name, root))
    return sorted(files)


def code_version(*sources, root: Path = ROOT) -> str:
    """A 12-digit hash of the contents of source_files(*sources), and of their paths."""
    root = Path(root).resolve()
    digest = hashlib.sha256()
    for path in source_files(*sources, root=root):
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
