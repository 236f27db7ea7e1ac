"""docs/operations.md stays true: its one table of environment variables is exactly what the code
reads (with the right defaults), and its topology names the services compose.yaml runs."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from authserver import conf
from tests.deploy.envvars import INTERNAL, PLANNED, ROOT, python_reads, read_by_code

DOC = (ROOT / "docs" / "operations.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"docs/operations.md has no section {title!r}"
    return match.group(1)


def _table(text: str) -> dict[str, list[str]]:
    """First-column name -> the row's cells, for rows whose first cell is one `NAME`."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and (name := re.fullmatch(r"`([A-Za-z0-9_-]+)`", cells[0])):
            rows[name.group(1)] = cells[1:]
    return rows


ENV_TABLE = _table(_section("Environment variables"))
READ = read_by_code() - INTERNAL.keys()


def test_there_is_one_table_of_environment_variables():
    header = "| variable | default | meaning |"
    assert DOC.count(header) == 1 and header in _section("Environment variables")


def test_every_variable_the_code_reads_is_in_the_table():
    assert sorted(READ - ENV_TABLE.keys()) == []


def test_the_table_names_nothing_that_nothing_reads():
    assert sorted(ENV_TABLE.keys() - READ - PLANNED) == []


def test_internal_variables_stay_out_of_the_table():
    assert sorted(ENV_TABLE.keys() & INTERNAL.keys()) == []


def test_planned_names_are_not_read_yet():
    # Reconciliation: once the branch that adds one of these is merged, drop it from PLANNED
    # (tests/deploy/envvars.py); the table then checks it like any other.
    assert sorted(PLANNED & read_by_code()) == []


def _declared() -> list[Any]:
    out = []

    def walk(cls: type) -> None:
        for f in fields(cls):
            if "section" in f.metadata:
                walk(f.metadata["section"])
            elif "env" in f.metadata:
                out.append(f)

    walk(conf.AuthServerConfig)
    return out


def _spellings(value: Any) -> set[str] | None:
    """How a default is written in the table, or None when it is described in words."""
    if isinstance(value, bool):
        return {"`1`"} if value else {"`0`"}
    if isinstance(value, int | float):
        return {f"`{value}`"}
    if isinstance(value, str) and value:
        return {f"`{value}`"}
    return None


@pytest.mark.parametrize("field", _declared(), ids=lambda f: f.metadata["env"])
def test_defaults_match_the_configuration(field):
    name = field.metadata["env"]
    default_cell = ENV_TABLE[name][0]
    default = field.default
    if (spellings := _spellings(default)) is not None and default is not MISSING:
        assert any(default_cell.startswith(s) for s in spellings), f"{name}: the table says {default_cell!r}"
    production = field.metadata["production"]
    if production is not MISSING and (spellings := _spellings(production)) is not None:
        assert any(f"(production: {s})" in default_cell for s in spellings), f"{name}: production default"
    if field.metadata["required"]:
        assert "*required* in production" in default_cell, name


def test_the_collector_sees_each_kind_of_read(tmp_path: Path):
    source = tmp_path / "reads.py"
    source.write_text(
        "import os\n"
        "a = os.environ.get('A_GET')\nb = os.environ['B_ITEM']\nc = os.getenv('C_GETENV')\n"
        "os.environ.setdefault('D_DEFAULT', 'x')\ne = 'E_IN' in os.environ\n"
        "os.environ['NOT_A_READ'] = 'x'\nenviron = {}\nf = environ.get('WSGI_KEY')\n")
    assert python_reads(source) == {"A_GET", "B_ITEM", "C_GETENV", "D_DEFAULT", "E_IN"}


def test_the_topology_names_every_compose_service():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    documented: set[str] = set()
    for line in _section("Topology").splitlines():
        if line.startswith("| `"):
            documented |= set(re.findall(r"`([a-z0-9-]+)`", line.split("|")[1]))
    assert documented == set(services)


@pytest.mark.parametrize("fact", [
    "health_uri /readyz",
    "header_up X-Forwarded-For {remote_host}",
    "header_up X-Forwarded-Proto {scheme}",
    "respond @internal 404",
])
def test_what_the_proxy_section_describes_is_in_the_caddyfile(fact):
    assert fact in (ROOT / "deploy" / "Caddyfile").read_text()


def test_the_docs_index_and_the_readme_link_here():
    assert "(operations.md)" in (ROOT / "docs" / "README.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "## Run it in production" in readme and "(docs/operations.md)" in readme
