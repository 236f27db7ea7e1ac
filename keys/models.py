"""API keys: the content of this app arrives with the API-key issue."""
