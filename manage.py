#!/usr/bin/env python
"""Django's command-line utility for authserver.

The front door (authserver.cliargs) answers ``version``, the nouns' ``--help`` and their usage
errors before Django is imported (a few tens of milliseconds instead of about two seconds of CPU);
everything else goes on to Django, which parses the same arguments with the same parser.
"""

import os
import sys


def main() -> None:
    from authserver import cliargs

    answered = cliargs.front_door(sys.argv)
    if answered is not None:
        sys.exit(answered)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
    from authserver import datadir
    from authserver.conf_parsers import EX_CONFIG, ConfigurationErrors

    try:
        datadir.prepare()  # first run: the data directory and its generated secrets, before settings read them
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ConfigurationErrors as exc:  # every bad variable in one message, no traceback
        if len(sys.argv) > 1 and sys.argv[1] in cliargs.NOUNS:  # the JSON commands: one JSON line on stderr
            cliargs.write_error({"error": "configuration", "problems": [
                {"variable": p.name, "problem": p.message, "fix": p.fix} for p in exc.problems]})
        else:
            sys.stderr.write(f"{exc}\n")
        sys.exit(EX_CONFIG)


if __name__ == "__main__":
    main()
