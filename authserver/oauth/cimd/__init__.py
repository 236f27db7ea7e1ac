"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01): a ``client_id``
that is an https URL names a JSON document describing the client, fetched by the safe fetcher
(:mod:`.fetcher`), checked against our registration policy (:mod:`.documents`) and kept as a
public Client with ``registration_source="cimd"`` for as long as the document may be believed
(:mod:`.services`). docs/client-metadata-documents.md."""
