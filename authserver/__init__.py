"""authserver. The Celery app is loaded with Django (``authserver.oauth``'s ``ready``) and by
``celery -A authserver`` (which finds ``authserver.celery``), not on import of this package: the
command line's front door (authserver.cliargs) imports this package and must stay light."""


def __getattr__(name: str) -> object:
    if name == "celery_app":
        from authserver.celery import app

        return app
    raise AttributeError(name)
