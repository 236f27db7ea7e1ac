"""The command line's argument specs, without Django: one parser per noun, for two callers.

``manage.py`` answers ``--help``, usage errors and ``version`` from here before it imports
Django (:func:`front_door`: a few tens of milliseconds instead of Django's full set-up), and each
management command builds its parser with the same :func:`build` (``authserver.cli``), so the two
cannot drift. This package imports nothing but the standard library and ``django.get_version``.

Exit codes, for every command: 0 done; 1 refused, not found or a dependency unavailable (one JSON
line on stderr); 2 usage error (one JSON line on stderr). ``audit verify`` also exits 1 when it
finds a problem, with its report on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from typing import Any, NoReturn

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

# Django's own options (django.core.management.base.BaseCommand.create_parser), declared here so
# that the front door accepts exactly what the command will; tests/cli checks they match.
BASE_OPTIONS = {"--version", "--verbosity", "--settings", "--pythonpath", "--traceback", "--no-color",
                "--force-color"}


@dataclass(frozen=True)
class Spec:
    """One noun: its one-line help, its examples (the ``--help`` epilog) and its arguments."""

    help: str
    examples: str
    add_arguments: Callable[[argparse.ArgumentParser], None]

    @property
    def epilog(self) -> str:
        return "Examples:\n" + self.examples.strip("\n") + "\n\n" + EXIT_CODES


EXIT_CODES = ("Output: one JSON object on stdout (lists: one object holding an array). Errors: one JSON\n"
              "line on stderr, {\"error\": ...}. Exit codes: 0 done, 1 refused / not found / a dependency\n"
              "unavailable, 2 usage error, 78 invalid configuration. See docs/cli.md.")


def write_error(payload: dict[str, Any]) -> None:
    sys.stderr.write(json.dumps(payload, ensure_ascii=False) + "\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; Django's common options listed after the command's own
    (like Django's ``DjangoHelpFormatter``)."""

    def _reordered_actions(self, actions: Any) -> Any:
        return sorted(actions, key=lambda a: set(a.option_strings) & BASE_OPTIONS != set())

    def add_usage(self, usage: Any, actions: Any, *args: Any, **kwargs: Any) -> None:
        super().add_usage(usage, self._reordered_actions(actions), *args, **kwargs)

    def add_arguments(self, actions: Any) -> None:
        super().add_arguments(self._reordered_actions(actions))


class CliParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one JSON line on stderr and exit 2, or, inside
    ``call_command``, the exception ``raise_error`` names (Django's ``CommandError``)."""

    def __init__(self, *, raise_error: type[Exception] | None = None, **kwargs: Any) -> None:
        self.raise_error = raise_error
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        if self.raise_error is not None:
            raise self.raise_error(f"Error: {message}")
        write_error({"error": "usage", "detail": message, "usage": self.format_usage().strip()})
        sys.exit(EXIT_USAGE)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", partial(CliParser, raise_error=self.raise_error))
        return super().add_subparsers(**kwargs)


# noun -> module holding its Spec (attribute named after the noun).
NOUNS = {"client": "clients", "scope": "clients", "apikey": "keys", "keys": "operations", "backup": "operations",
         "restore": "operations", "audit": "operations", "staff": "operations"}


def spec(noun: str) -> Spec:
    found: Spec = getattr(import_module(f"authserver.cliargs.{NOUNS[noun]}"), noun)
    return found


def build(noun: str, prog: str, *, raise_error: type[Exception] | None = None) -> CliParser:
    """The parser of ``noun``: the same for the front door and for the management command."""
    import django

    noun_spec = spec(noun)
    parser = CliParser(prog=prog, description=noun_spec.help, epilog=noun_spec.epilog, raise_error=raise_error)
    parser.add_argument("--version", action="version", version=django.get_version(),
                        help="Show program's version number and exit.")
    parser.add_argument("-v", "--verbosity", default=1, type=int, choices=[0, 1, 2, 3],
                        help="Verbosity level; 0=minimal output, 1=normal output, 2=verbose output, "
                             "3=very verbose output")
    parser.add_argument("--settings", help="The Python path to a settings module, e.g. \"myproject.settings.main\". "
                                           "If this isn't provided, the DJANGO_SETTINGS_MODULE environment variable "
                                           "will be used.")
    parser.add_argument("--pythonpath",
                        help="A directory to add to the Python path, e.g. \"/home/djangoprojects/myproject\".")
    parser.add_argument("--traceback", action="store_true", help="Display a full stack trace on CommandError "
                                                                "exceptions.")
    parser.add_argument("--no-color", action="store_true", help="Don't colorize the command output.")
    parser.add_argument("--force-color", action="store_true", help="Force colorization of the command output.")
    noun_spec.add_arguments(parser)
    return parser


def version() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        own = package_version("authserver")
    except PackageNotFoundError:
        own = "unknown"
    import django

    return {"authserver": own, "django": django.get_version(), "python": sys.version.split()[0]}


def front_door(argv: Sequence[str]) -> int | None:
    """Answer what needs no Django: ``version``, ``NOUN --help`` and usage errors of the nouns.

    Returns the exit status when answered, None when the command must run (Django parses the
    same arguments again with the same parser).
    """
    if len(argv) < 2:
        return None
    noun = argv[1]
    if noun == "version" and len(argv) == 2:
        sys.stdout.write(json.dumps(version(), sort_keys=True) + "\n")
        return EXIT_OK
    if noun not in NOUNS:
        return None
    try:
        build(noun, f"{os.path.basename(argv[0])} {noun}").parse_args(list(argv[2:]))
    except SystemExit as exited:  # --help, --version (0) or a usage error (2): already printed
        return exited.code if isinstance(exited.code, int) else EXIT_USAGE
    return None
