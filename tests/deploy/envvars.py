"""Which environment variables the code reads: the configuration's declarations plus direct reads.

Read by tests/deploy/test_operations_doc.py (the one table in docs/operations.md) and
tests/deploy/test_compose.py (compose.yaml sets only variables something reads).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from authserver import conf

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("authserver", "clients", "keys")
# The configuration reads its mapping as ``environ`` (it is os.environ, passed in).
CONFIG_MODULES = {ROOT / "authserver" / "conf.py", ROOT / "authserver" / "conf_files.py"}
ENTRYPOINT = ROOT / "docker-entrypoint.sh"

# Read by the code, deliberately not in the operator's table.
INTERNAL = {
    "DJANGO_SETTINGS_MODULE": "Django's own; the image and every entry point set it to authserver.settings",
    "AUTHSERVER_TESTING": "marks a test process (the suite's own state); never set in a deployment",
    "AUTHSERVER_BENCH_BASELINE": "the benchmark's bare-view baseline server; never set in a deployment",
    "AUTHSERVER_SERVE_WORKER_READY_FILE": "set by manage.py serve for the worker it starts; not an input",
    "AUTHSERVER_SERVE_BEAT_READY_FILE": "set by manage.py serve for the beat it starts; not an input",
}

# Variables documented ahead of the code that will read them (none today). Once a name is read,
# test_planned_names_are_not_read_yet says to drop it here.
PLANNED: set[str] = set()


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) \
        and node.value.id == "os"


def python_reads(path: Path) -> set[str]:
    """Names read through os.environ.get/[]/setdefault/in, os.getenv (and ``environ`` in the configuration)."""
    found: set[str] = set()
    config_module = path in CONFIG_MODULES
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        name = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in {"get", "setdefault"} and (
                    _is_os_environ(func.value)
                    or (config_module and isinstance(func.value, ast.Name) and func.value.id == "environ")):
                name = _constant(node.args[0])
            elif isinstance(func, ast.Attribute) and func.attr == "getenv" and isinstance(func.value, ast.Name) \
                    and func.value.id == "os":
                name = _constant(node.args[0])
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.ctx, ast.Load):
            name = _constant(node.slice)
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1 and _is_os_environ(node.comparators[0]):
            name = _constant(node.left)
        if name:
            found.add(name)
    return found


def entrypoint_reads() -> set[str]:
    """``$NAME`` / ``${NAME...}`` in docker-entrypoint.sh, the image's role switch."""
    text = "\n".join(line.split("#", 1)[0] for line in ENTRYPOINT.read_text().splitlines())
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))


def read_by_code() -> set[str]:
    configured = set(conf.env_names())
    names = configured | entrypoint_reads()
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                names |= python_reads(path)
    # Every configured variable may be given as <NAME>_FILE (docs/operations.md says so once):
    # reading REDIS_URL_FILE is reading REDIS_URL.
    # (AUTHSERVER_KEYSTORE_FILE is a variable of its own: names that are configured stay as they are.)
    return {name.removesuffix("_FILE") if name not in configured and name.removesuffix("_FILE") in configured
            else name for name in names}
