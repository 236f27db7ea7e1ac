"""Rotating public paths of the resource servers (docs/rotating-paths.md): the settings and key
(:mod:`.models`), their writes (:mod:`.services`) and their admin (:mod:`.admin`)."""
