"""The PostgreSQL backend authserver runs on (``ENGINE = "authserver.db.postgresql"``): see :mod:`.base`."""
