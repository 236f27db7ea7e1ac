"""The house stands: no import cycle between modules or packages, and no import that points up
the layering declared in docs/architecture.md (function-level imports included)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.architecture.imports import cycles, declared_layers, imports, layer_of, package_of, project_modules

MODULES = project_modules()
IMPORTS = imports(MODULES)
LAYERS = declared_layers()


def test_no_module_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for found in IMPORTS:
        graph[found.source].add(found.target)
    assert cycles(graph) == []


def test_no_package_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for found in IMPORTS:
        source, target = package_of(found.source), package_of(found.target)
        if source != target:
            graph[source].add(target)
    assert cycles(graph) == []


def test_every_module_has_a_layer():
    assert [name for name in MODULES if layer_of(name, LAYERS) is None] == []


def test_no_import_points_up():
    upward = []
    for found in IMPORTS:
        source, target = layer_of(found.source, LAYERS), layer_of(found.target, LAYERS)
        if source is not None and target is not None and target > source:
            upward.append(f"{found.source}:{found.line} ({LAYERS[source][0]}) imports "
                          f"{found.target} ({LAYERS[target][0]})")
    assert upward == []


# The checker itself: a cycle, an upward import and a function-level import are all seen.
def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(("module", "layer"), [
    ("authserver.revocation", "platform"),
    ("authserver.introspection.service", "domain"),
    ("authserver.introspection.endpoint", "interface"),
    ("keys.admin", "interface"),
    ("keys.verification", "domain"),
    ("authserver.anomaly.observers", "policy"),
    ("authserver.ratelimit.limiter", "policy"),
    ("keys.management.commands.client", "interface"),
])
def test_layer_map(module, layer):
    assert LAYERS[layer_of(module, LAYERS)][0] == layer


def test_function_level_imports_are_counted(tmp_path, monkeypatch):
    from tests.architecture import imports as graph

    (tmp_path / "authserver").mkdir()
    (tmp_path / "authserver" / "__init__.py").write_text("")
    (tmp_path / "authserver" / "low.py").write_text("def f():\n    from authserver import high\n")
    (tmp_path / "authserver" / "high.py").write_text("from authserver.low import f\n")
    monkeypatch.setattr(graph, "ROOT", tmp_path)
    monkeypatch.setattr(graph, "PACKAGES", ("authserver",))
    modules = graph.project_modules()
    found = {(i.source, i.target, i.in_function) for i in graph.imports(modules)}
    assert ("authserver.low", "authserver.high", True) in found
    assert ("authserver.high", "authserver.low", False) in found
