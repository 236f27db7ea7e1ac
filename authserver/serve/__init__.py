"""Support code for ``manage.py serve``: the single-command, embedded-defaults way to run authserver."""
