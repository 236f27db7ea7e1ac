"""Token introspection (RFC 7662): the endpoint (:mod:`.endpoint`) and the service (:mod:`.service`)."""
