"""Making the services of a checked application file, each under its name from the file.

Each service the file names is wrapped in a ``ConfigService`` called by that name, so that the
Application's children are exactly the file's services (what a reload compares), and so that
a failure to start names the service as the file does: ``services.site: tcp:8080: address
already in use``.
"""

from __future__ import annotations

import os
from typing import Any

from dropins.config.resolve import AppConfig, ServiceSpec, resolve_factory
from dropins.service.base import Application, MultiService
from dropins.service.errors import ListenError, ServiceStartError

__all__ = ["ConfigService", "build_application", "make_service"]


class BuildError(Exception):
    """A service could not be made; the message names it (``services.jobs: ...``)."""


class ConfigService(MultiService):
    """One service of the file, named as in it; its start errors name it the same way."""

    def __init__(self, spec: ServiceSpec, service: Any) -> None:
        super().__init__(spec.name)
        self.spec = spec
        self.add_service(service)

    def privileged_start(self) -> None:
        try:
            super().privileged_start()
        except Exception as error:
            raise self._named(error) from None

    async def start(self) -> None:
        try:
            await super().start()
        except Exception as error:
            raise self._named(error) from None

    def _named(self, error: BaseException) -> ServiceStartError:
        """``services.NAME: <the most telling message in the chain>``."""
        cause: BaseException | None = error
        message = " ".join(str(error).split()) or type(error).__name__
        while cause is not None:
            if isinstance(cause, ListenError):
                message = str(cause)
                break
            cause = cause.__cause__
        return ServiceStartError(f"services.{self.spec.name}: {message}", self)


def make_service(spec: ServiceSpec, folder: str) -> ConfigService:
    """Make ``spec``'s service (a command's ``make_service``, or the factory's call)."""
    try:
        if spec.factory is not None:
            factory = resolve_factory(spec.factory, folder)
            kwargs = {key.replace("-", "_"): value for key, value in spec.values.items()}
            service = factory(**kwargs)
        else:
            service = spec.maker.make_service(spec.options)
    except Exception as error:
        detail = " ".join(str(error).split())
        raise BuildError(f"services.{spec.name}: cannot make the service: "
                         f"{type(error).__name__}: {detail}") from error
    if not all(callable(getattr(service, method, None))
               for method in ("privileged_start", "start", "stop")):
        raise BuildError(f"services.{spec.name}: {spec.factory} returned "
                         f"{type(service).__name__}, not a service")
    return ConfigService(spec, service)


def build_application(config: AppConfig) -> Application:
    """An Application holding every service of ``config``, in file order."""
    application = Application(config.name)
    folder = os.path.dirname(os.path.abspath(config.path))
    for spec in config.services.values():
        application.add_service(make_service(spec, folder))
    return application
