"""Django format modules (``FORMAT_MODULE_PATH``): one date-time format on every admin page.

``2026-12-02 06:22 UTC``: ISO-ordered, 24-hour, with the zone named (the server runs in UTC), for
Django's own list columns and read-only fields as for our columns (``authserver.adminkit.when``).
"""
