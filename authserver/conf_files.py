"""``<NAME>_FILE``: any configuration variable given as the path of a file that holds its value.

Compose and Docker secrets arrive as files (``/run/secrets/<name>``); a secret in a file stays out
of ``docker inspect``, ``/proc/<pid>/environ`` of every child and the shell history. The
configuration (:func:`authserver.conf.load`) resolves the files first, for every variable it
declares, so each variable has the file form without saying so.

Errors name the variable and the path, never what the file holds (ASVS 13.3: no secret in logs).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from authserver.conf_parsers import ConfigurationErrors, Problem

SUFFIX = "_FILE"


def given(environ: Mapping[str, str], name: str) -> bool:
    """Whether ``name`` is set, directly or as ``<name>_FILE`` (empty or blank counts as unset)."""
    return bool(environ.get(name, "").strip() or environ.get(name + SUFFIX, "").strip())


def resolve(
    environ: Mapping[str, str], names: Collection[str], problems: list[Problem] | None = None
) -> dict[str, str]:
    """``environ`` with each of ``names`` whose ``<NAME>_FILE`` is set read from that file.

    The file's text loses one trailing newline (what ``echo`` and editors add). A name whose file
    form is itself a declared variable (``AUTHSERVER_KEYSTORE`` / ``AUTHSERVER_KEYSTORE_FILE``,
    the key file's path) has no file form: the declared variable wins. Every file that cannot be
    used is appended to ``problems`` (its variable left as it was); without that list, they are
    raised together as ConfigurationErrors.
    """
    found: list[Problem] = []
    resolved = dict(environ)
    for name in names:
        path = environ.get(name + SUFFIX, "").strip()
        if not path or name + SUFFIX in names:
            continue
        # Both set: whichever won, an operator who changed the other would be silently ignored.
        if environ.get(name, "").strip():
            found.append(Problem(name, f"{name} and {name}{SUFFIX} are both set", "set only one of them"))
            continue
        try:
            resolved[name] = Path(path).read_text(encoding="utf-8").removesuffix("\n")
        except UnicodeDecodeError:  # its message quotes the offending byte: keep it out
            found.append(Problem(name, f"{name}{SUFFIX}: {path} is not UTF-8 text",
                                 "write the value as UTF-8 text in that file"))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            found.append(Problem(name, f"{name}{SUFFIX}: cannot read {path} ({reason})",
                                 "make the file readable by this user, or correct the path"))
    if problems is None and found:
        raise ConfigurationErrors(found)
    if problems is not None:
        problems += found
    return resolved
