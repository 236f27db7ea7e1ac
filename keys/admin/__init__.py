"""Admin for API keys and compromise responses, by concept.

- :mod:`keys.admin.apikey`: the key list, the issuing form and the read-only key page;
- :mod:`keys.admin.lifecycle`: rotate, revoke, suspend and resume;
- :mod:`keys.admin.usage`: a key's usage charts;
- :mod:`keys.admin.compromise`: the compromise response and the list of responses;
- :mod:`keys.admin.base`, :mod:`keys.admin.display`, :mod:`keys.admin.filters`: what they share.

Django's admin autodiscovery imports this package; the imports below register the model admins.
"""

from keys.admin import apikey, compromise  # noqa: F401  (they register ApiKey and CompromiseResponse)
