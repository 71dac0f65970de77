"""Package code counts as code: a short hash of exactly the project code a job runs.

Snakemake reruns a job when its script changes, but not when a package module the script
imports does (doubling a term in creativity/scoring.py left every table stale). A rule puts
`code=fingerprint.code_version(script)` in its params, so Snakemake's params trigger fires
when that code changes, and only then.

"That code" is traced by name, from the source (ast), without importing it: the script's
statements; every top-level definition of a project module (function, class, assignment)
that one of them names, directly, through an import or as module.attribute; and what those
name in turn. A module's top-level statements that bind no name (calls, ifs) run on import,
so they count for every module reached, with its packages' __init__.py. A definition counts
by its code (ast.unparse), so an edit to a comment, or to a function the job never reaches
(the sampler beside the trainer in one module), reruns nothing.

Reached is what is named: a function found by a string at run time (importlib, getattr) must
be given, as a module name (all of it counts), beside the script.
"""
from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What workflow/scripts/sample.py runs only when its job has a scoring section (the
# Transformer++'s reward tilt): an EBT's sample job passes these as `not_run`.
SAMPLE_SCORER_CODE = ("creativity.task:scorer_for", "models.experiment:_reward_tilt")


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of a project module or package `name`, or None if it is not one."""
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


@dataclass
class _Module:
    name: str
    defs: dict[str, list[ast.stmt]] = field(default_factory=dict)  # top-level name -> statements binding it
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # local -> (project module, name)
    run_on_import: list[ast.stmt] = field(default_factory=list)  # top-level statements that bind no name


def _import_bindings(node, package: str, root: Path) -> dict[str, tuple[str, str | None]]:
    """What an import statement binds: local name -> (project module, name in it or None for
    the module itself). Modules outside the project bind nothing here."""
    out = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            target = alias.name if alias.asname else alias.name.split(".")[0]
            if _module_file(target, root):
                out[alias.asname or target] = (target, None)
    elif isinstance(node, ast.ImportFrom):
        base = package.split(".") if node.level and package else []
        if node.level:
            base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
        if module and _module_file(module, root):
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                out[alias.asname or alias.name] = (submodule, None) if _module_file(submodule, root) else (module, alias.name)
    return out


def _bound_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
        stmt, (ast.AnnAssign, ast.AugAssign)) else []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


@lru_cache(maxsize=None)
def _parse(path: Path, name: str, root: Path, mtime_ns: int) -> _Module:  # mtime: an edited file is parsed again
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    module = _Module(name)
    for i, stmt in enumerate(tree.body):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            module.imports.update(_import_bindings(stmt, package, root))
        elif names := _bound_names(stmt):
            for bound in names:
                module.defs.setdefault(bound, []).append(stmt)
        elif not (i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):  # not the docstring
            module.run_on_import.append(stmt)
    return module


def _load(name: str, root: Path, script: Path | None = None) -> _Module:
    path = script or _module_file(name, root)
    return _parse(path, name, root, path.stat().st_mtime_ns)


def _annotations(node: ast.AST) -> set[int]:
    """The ids of every annotation's nodes: an annotation names a type but runs none of its
    code (the project's modules defer them with `from __future__ import annotations`)."""
    roots = []
    for sub in ast.walk(node):
        if isinstance(sub, (ast.arg, ast.AnnAssign)):
            roots.append(sub.annotation)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
            roots.append(sub.returns)
    return {id(n) for root in roots if root is not None for n in ast.walk(root)}


def _chains(node: ast.AST):
    """Every name a piece of code refers to, as a chain: a.b.c -> ("a", "b", "c")."""
    annotation = _annotations(node)
    for sub in ast.walk(node):
        if id(sub) in annotation:
            continue
        if isinstance(sub, ast.Attribute):
            parts, value = [sub.attr], sub.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                yield tuple([value.id, *reversed(parts)])
        elif isinstance(sub, ast.Name):
            yield (sub.id,)


class _Tracer:
    def __init__(self, root: Path, not_run: frozenset[tuple[str, str]] = frozenset()):
        self.root = root
        self.not_run = not_run  # (module, name): definitions the job provably never calls
        self.units: dict[tuple[str, str], list[ast.stmt]] = {}  # (module, name) -> its code
        self.modules: set[str] = set()  # imported, so their run_on_import statements ran

    def module(self, name: str) -> _Module:
        if name not in self.modules:
            self.modules.add(name)
            parts = name.split(".")
            for i in range(1, len(parts)):  # importing a.b.c runs a and a.b first
                self.module(".".join(parts[:i]))
            mod = _load(name, self.root)
            self.code(mod, mod.run_on_import, {})
            for target, _ in set(mod.imports.values()):
                self.module(target)  # its top-level imports run too
        return _load(name, self.root)

    def whole(self, name: str) -> None:
        mod = self.module(name)
        for bound in mod.defs:
            self.unit(name, bound)

    def unit(self, module: str, name: str) -> None:
        if (module, name) in self.units or (module, name) in self.not_run:
            return
        mod = self.module(module)
        if name in mod.defs:
            self.units[(module, name)] = mod.defs[name]
            self.code(mod, mod.defs[name], {})
        elif name in mod.imports:  # re-exported: follow it to where it is defined
            self.follow(mod.imports[name], ())

    def follow(self, binding: tuple[str, str | None], rest: tuple[str, ...]) -> None:
        module, name = binding
        if name is not None:
            self.unit(module, name)
            return
        while rest and _module_file(f"{module}.{rest[0]}", self.root):  # package.submodule...
            module, rest = f"{module}.{rest[0]}", rest[1:]
        if rest:
            self.unit(module, rest[0])
        else:
            self.whole(module)  # the module itself is passed around: all of it may run

    def code(self, mod: _Module, stmts: list[ast.stmt], local: dict) -> None:
        """Trace what these statements of `mod` name; imports inside them bind names too."""
        package = mod.name if _module_file(mod.name, self.root) and _module_file(
            mod.name, self.root).name == "__init__.py" else mod.name.rpartition(".")[0]
        local = dict(local)
        for stmt in stmts:
            for node in ast.walk(stmt):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    local.update(_import_bindings(node, package, self.root))
        for stmt in stmts:
            for chain in _chains(stmt):
                if chain[0] in local:
                    self.follow(local[chain[0]], chain[1:])
                elif chain[0] in mod.imports:
                    self.follow(mod.imports[chain[0]], chain[1:])
                elif chain[0] in mod.defs and mod.name:  # a script's own definitions are traced already
                    self.unit(mod.name, chain[0])


def traced_code(*sources, root: Path = ROOT, not_run: tuple[str, ...] = ()) -> dict[str, str]:
    """What a job running these scripts (paths, relative to `root` or absolute) and modules
    (dotted names: all of each) runs: "module:name" (or "module:<import>", "script:<path>")
    -> its code, unparsed.

    `not_run` names definitions ("module:name") that the job's params keep it from calling
    (an EBT's sample job never builds the scorer that the Transformer++'s reward tilt uses);
    they and what only they reach are left out."""
    root = Path(root).resolve()
    tracer, out = _Tracer(root, frozenset(tuple(unit.split(":")) for unit in not_run)), {}
    for source in sources:
        if str(source).endswith(".py"):
            path = (root / source).resolve()
            label = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
            script = _parse(path, "", root, path.stat().st_mtime_ns)
            statements = [s for stmts in script.defs.values() for s in stmts] + script.run_on_import
            tracer.code(script, statements, {})
            out[f"script:{label}"] = "\n".join(ast.unparse(s) for s in statements)
        elif _module_file(source, root) is None:
            raise ValueError(f"{source}: no such module or package under {root}")
        else:
            tracer.whole(source)
    for module in tracer.modules:
        out[f"{module}:<import>"] = "\n".join(ast.unparse(s) for s in _load(module, root).run_on_import)
    for (module, name), stmts in tracer.units.items():
        out[f"{module}:{name}"] = "\n".join(ast.unparse(s) for s in stmts)
    return dict(sorted(out.items()))


def code_version(*sources, root: Path = ROOT, not_run: tuple[str, ...] = ()) -> str:
    """A 12-digit hash of traced_code(*sources, not_run=not_run)."""
    digest = hashlib.sha256()
    for key, code in traced_code(*sources, root=root, not_run=not_run).items():
        digest.update(key.encode() + b"\0" + code.encode() + b"\0")
    return digest.hexdigest()[:12]
