"""The staff plane's pages, under ``/<ADMIN_PATH>/security/`` (authserver.staff.urls).

Each page checks its own stage (authserver.staff.stages): the gate lets these pages through
because they are how a session gets past it."""
