#!/usr/bin/env python
"""Django's command-line utility for authserver."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
    from authserver import datadir
    from authserver.conf_parsers import EX_CONFIG, ConfigurationErrors

    try:
        datadir.prepare()  # first run: the data directory and its generated secrets, before settings read them
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ConfigurationErrors as exc:  # every bad variable in one message, no traceback
        sys.stderr.write(f"{exc}\n")
        sys.exit(EX_CONFIG)


if __name__ == "__main__":
    main()
