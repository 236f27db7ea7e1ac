"""The project's import graph, read from the source with ``ast`` (no module is imported)."""

from __future__ import annotations

import ast
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("authserver", "clients", "keys")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported project module
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[module_name(path)] = path
    return modules


def _nearest_module(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(modules: dict[str, Path]) -> list[Import]:
    """Every import of a project module by a project module, at any depth (functions included)."""
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        function_lines = {n.lineno for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                          for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                # `from package import module` imports the module; `from module import name` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                resolved = _nearest_module(target, modules)
                if resolved is not None and resolved != name:
                    found.append(Import(name, resolved, node.lineno, node.lineno in function_lines))
    return found


def package_of(module: str) -> str:
    """The unit of the package-cycle check: an app (``clients``, ``authserver.oauth``…), or a
    top-level module of ``authserver`` on its own."""
    parts = module.split(".")
    if parts[0] != "authserver":
        return parts[0]
    if len(parts) == 1:
        return "authserver"
    if (ROOT / "authserver" / parts[1]).is_dir():
        return f"authserver.{parts[1]}"
    return f"authserver.{parts[1]}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def declared_layers(doc: Path | None = None) -> list[tuple[str, list[str]]]:
    """The ``layers`` block of docs/architecture.md: ``[(layer, patterns)]`` from the bottom up."""
    text = (doc or ROOT / "docs" / "architecture.md").read_text()
    blocks = re.findall(r"^```layers\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 1, "docs/architecture.md must hold exactly one ```layers block"
    layers = []
    for line in blocks[0].splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, patterns = line.partition(":")
            layers.append((name.strip(), patterns.split()))
    return layers


def layer_of(module: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """The index of the highest layer with a pattern matching ``module`` (None: undeclared)."""
    for position in range(len(layers) - 1, -1, -1):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in layers[position][1]):
            return position
    return None
