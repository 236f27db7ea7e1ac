"""End-user pages: sign in (:mod:`.login`), the landing page and sign out (:mod:`.pages`), and the
error pages browsers see (:mod:`.errors`)."""

from authserver.accounts.views.login import LoginView, authorization_redirect_target

__all__ = ["LoginView", "authorization_redirect_target"]
