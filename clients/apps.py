from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Clients and resource servers"

    def ready(self) -> None:
        from clients import signals  # noqa: F401 - cache invalidation on delete
