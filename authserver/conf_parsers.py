"""Parsers of configuration values (authserver.conf): each turns one raw, non-empty environment
value into its type, or refuses it with an error that names the variable.

And the error that reports them: the configuration is read to the end, every bad variable becomes a
:class:`Problem`, and one :class:`ConfigurationErrors` lists them all (issue 14: an operator fixing
one variable at a time, restart after restart, learns nothing from the first refusal about the next).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

Parser = Callable[[str, str], Any]  # (variable name, raw non-empty value) -> value

# sysexits.h EX_CONFIG: what every entry point exits with when the configuration is refused. A
# systemd unit can say RestartPreventExitStatus=78: restarting cannot mend a configuration.
EX_CONFIG = 78


@dataclass(frozen=True)
class Problem:
    """One thing wrong: the variable (or option) at fault, what is wrong, and how to put it right.

    ``message`` names the variable and never quotes a secret's value (ASVS 13.3: no secret in logs).
    """

    name: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.message}. Fix: {self.fix}" if self.fix else self.message


FOOTER = ('Every variable is described in README.md, "Configuration"; any of them may also be given as a file, '
          "<NAME>_FILE.")


class ConfigurationErrors(ImproperlyConfigured):
    """Every problem found, at once; ``str()`` is the whole report, ready for a terminal or a log."""

    def __init__(self, problems: Sequence[Problem], *, heading: str = "", footer: str = FOOTER) -> None:
        self.problems = tuple(problems)
        self.footer = footer
        count = len(self.problems)
        self.heading = heading or (
            f"authserver cannot start: {count} configuration problem{'s' if count != 1 else ''} "
            "(nothing was started or changed):")
        super().__init__(self.report())

    def report(self) -> str:
        return "\n".join([self.heading, *(f"  - {problem}" for problem in self.problems), self.footer]).rstrip()


def problem(error: ImproperlyConfigured, name: str, fix: str = "") -> list[Problem]:
    """The problems an ImproperlyConfigured stands for (all of them, if it already lists several)."""
    if isinstance(error, ConfigurationErrors):
        return list(error.problems)
    return [Problem(name, str(error), fix)]


# --- parsers: each names the variable in its error ----------------------------------------------
def _text(name: str, raw: str) -> str:
    return raw


def _lower(name: str, raw: str) -> str:
    return raw.lower()


def _one_of(*choices: str) -> Parser:
    def parse(name: str, raw: str) -> str:
        if raw.lower() not in choices:
            raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
        return raw.lower()

    return parse


def _bool(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), not {raw!r}")


def _int(minimum: int = 0) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
        if value < minimum:
            raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
        return value

    return parse


def _float(minimum: float = 0.0, maximum: float | None = None) -> Parser:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
        if not minimum <= value <= (maximum if maximum is not None else float("inf")):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise ImproperlyConfigured(f"{name} must be {bounds}, not {value}")
        return value

    return parse


def _list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _trusted_proxies(name: str, raw: str) -> tuple[str, ...]:
    from authserver.netaddr import parse_trusted_proxies

    entries = _list(name, raw)
    try:
        return tuple(str(network) for network in parse_trusted_proxies(entries))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def _path(name: str, raw: str) -> Path:
    return Path(raw).resolve()


def _log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in logging.getLevelNamesMapping():
        raise ImproperlyConfigured(f"{name} must be a logging level (DEBUG, INFO, WARNING…), not {raw!r}")
    return level


def _api_key_prefix(name: str, raw: str) -> str:
    # Distinct from the built-in credential types, so a scanner (and our own parser) tells them apart.
    if not (raw.isascii() and raw.isalnum() and raw.islower() and raw[0].isalpha() and len(raw) <= 16
            and raw not in {"at", "rt", "cs", "ac", "dc", "iat", "rat"}):
        raise ImproperlyConfigured(f"{name} must be 1-16 lowercase letters/digits, not at/rt/cs/ac/dc/iat/rat")
    return raw


def _http_url(name: str, raw: str) -> str:
    """An absolute http(s) URL (a witness, a webhook receiver): other schemes are refused at start."""
    from urllib.parse import urlsplit

    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"{name} must be an absolute http:// or https:// URL")
    return raw.strip()


# --- declarations (authserver.conf and its conf_<topic> sections) -------------------------------
def var(env: str, default: Any, parse: Parser = _text, *, flat: str | None = None, production: Any = MISSING,
        required_in_production: bool = False, secret: bool = False, fix: str = "") -> Any:
    """A field read from the environment variable ``env``; empty or unset means the default.

    ``fix`` tells an operator what to set when a required variable is missing."""
    metadata = {"env": env, "parse": parse, "flat": flat, "production": production, "required": required_in_production,
                "fix": fix}
    if isinstance(default, Mapping):  # read-only, but dataclasses only know that a dict is not
        return field(default_factory=lambda: default, repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


def section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"section": cls})
