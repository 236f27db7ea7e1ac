"""authserver-rs: the resource-server kit for authserver (README.md)."""

from authserver_rs.aliases import Routed
from authserver_rs.config import Config
from authserver_rs.errors import (
                                  InsufficientScope,
                                  InvalidRequest,
                                  InvalidToken,
                                  NoCredential,
                                  NotFound,
                                  RateLimited,
                                  Refusal,
                                  Unavailable,
)
from authserver_rs.kit import ResourceServer, bearer_credential, require_scopes
from authserver_rs.paths import prefix
from authserver_rs.principal import Principal

__all__ = ["Config", "InsufficientScope", "InvalidRequest", "InvalidToken", "NoCredential", "NotFound", "Principal",
           "RateLimited", "Refusal", "ResourceServer", "Routed", "Unavailable", "bearer_credential", "prefix",
           "require_scopes"]
