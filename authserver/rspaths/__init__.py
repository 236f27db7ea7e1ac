"""Rotating paths of the resource servers, over HTTP: the path-key and discovery endpoints
(:mod:`.views`; the settings and the key: :mod:`clients.resource_paths`; docs/rotating-paths.md)."""
