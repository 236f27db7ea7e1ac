"""The argument specs (authserver.cliargs) are the commands' own: one parser for the front door and
for Django, every noun's ``--help`` shows examples of each of its verbs, and the front door accepts
exactly Django's common options."""

from __future__ import annotations

import argparse

import pytest
from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand

from authserver import cliargs
from authserver.cli import DependencyCommand


def _command(noun: str) -> BaseCommand:
    return load_command_class(get_commands()[noun], noun)


def _verbs(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def test_every_json_command_has_a_spec():
    ours = {name for name, app in get_commands().items() if app != "django.core"
            and isinstance(_command(name), DependencyCommand)}
    assert ours == set(cliargs.NOUNS)


@pytest.mark.parametrize("noun", sorted(cliargs.NOUNS))
def test_the_command_parses_with_the_spec(noun):
    command = _command(noun)
    # An add_arguments of its own would be ignored (the parser is the spec's): there must be none.
    assert type(command).add_arguments is BaseCommand.add_arguments
    assert command.help == cliargs.spec(noun).help
    assert (command.create_parser("manage.py", noun).format_help()
            == cliargs.build(noun, f"manage.py {noun}").format_help())


@pytest.mark.parametrize("noun", sorted(cliargs.NOUNS))
def test_help_has_an_example_of_every_verb(noun):
    text = cliargs.build(noun, f"manage.py {noun}").format_help()
    examples = text.split("\nExamples:\n", 1)[1]
    verbs = _verbs(cliargs.build(noun, noun)) or [""]
    for verb in verbs:
        assert f"manage.py {noun} {verb}".rstrip() in examples, f"no example of {noun} {verb}"
    assert "Exit codes: 0 done, 1 refused" in text


def test_the_front_door_knows_djangos_common_options():
    class Bare(BaseCommand):
        requires_system_checks: list[str] = []

    django_options = {o for a in Bare().create_parser("manage.py", "bare")._actions for o in a.option_strings}
    ours = {o for a in cliargs.build("scope", "manage.py scope")._actions for o in a.option_strings}
    assert django_options <= ours
    assert cliargs.BASE_OPTIONS <= django_options
