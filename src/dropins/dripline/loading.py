"""Building a service from dl-serve's YAML (or the same mapping from a dropins config file).

``module:`` names are looked up among the built-in classes and the classes exported by
installed ``dripline.extensions.*`` packages (found by the plugin layer, so listing them imports
nothing when its cache is valid).  Two extensions exporting one name is an error naming both,
not dripline's silent last-wins; a name that is not found lists the close matches; a key a
class does not take is an error naming the endpoint and the key.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from typing import Any

from dropins.dripline.mesh import ConfigError, mesh_from

log = logging.getLogger("dropins.dripline")

EXTENSION_PACKAGES = ("dripline.extensions",)
_SERVICE_KEYS = {"name", "module", "endpoints", "dripline_mesh", "runtime-config"}
_MESH_KEYS = {"heartbeat_interval_s", "max_payload_size"}


def _builtin() -> dict[str, Any]:
    from dropins.dripline import endpoints, service

    return {cls.__name__: cls for cls in (service.Service, service.AlertConsumer,
                                          endpoints.Endpoint, endpoints.Entity,
                                          endpoints.KeyValueStore)}


class Classes:
    """The classes ``module:`` may name, loaded on first use, with their versions."""

    def __init__(self) -> None:
        self.builtin = _builtin()
        self.records: dict[str, list[Any]] = {}
        self.versions: dict[str, Any] = {}
        from dropins.plugin import iter_plugin_info

        for package in EXTENSION_PACKAGES:
            try:
                records = list(iter_plugin_info(package=package))
            except Exception as error:  # no such package: no extensions installed
                log.debug("no extensions in %s: %s", package, error)
                continue
            for record in records:
                if record.state in ("ok", "shadowed"):
                    self.records.setdefault(record.name, []).append(record)

    def resolve(self, name: Any, where: str) -> Any:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.module: give a class name, e.g. KeyValueStore")
        found = self.records.get(name, [])
        modules = sorted({record.module for record in found})
        if len(modules) > 1:
            raise ConfigError(f"{where}.module: {name!r} is exported by several extensions ("
                              f"{', '.join(modules)}); uninstall one of them")
        if found:
            record = found[0]
            cls = record.load()
            key = record.distribution or record.module
            self.versions[key] = {"version": record.version or "", "commit": "",
                                  "package": record.module}
            return cls
        if name in self.builtin:
            return self.builtin[name]
        known = sorted({*self.builtin, *self.records})
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else \
            f"; known: {', '.join(known)}"
        raise ConfigError(f"{where}.module: unknown class {name!r}{hint}")


def accepted_keys(cls: Any) -> set[str] | None:
    """The keyword arguments ``cls`` takes, following ``**kwargs`` up the MRO; None for any."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            break
        parameters = list(inspect.signature(init).parameters.values())[1:]
        names.update(p.name for p in parameters
                     if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return names


def _construct(cls: Any, spec: dict[str, Any], where: str, **extra: Any) -> Any:
    keys = accepted_keys(cls)
    options = {key: value for key, value in spec.items() if key != "module"}
    for key in options:
        if keys is not None and key not in keys:
            close = difflib.get_close_matches(key, sorted(keys), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r} for {cls.__name__}{hint}")
    try:
        return cls(**options, **extra)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {cls.__name__}: {error}") from None


def build_service(config: Any, *, password_file: str | None = None, source: str = "config"
                  ) -> Any:
    """A ``Service`` (or the class ``module:`` names) from a dl-serve mapping."""
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: must be a mapping with name, module and endpoints")
    config = dict(config)
    runtime = config.pop("runtime-config", None)
    if runtime is not None:
        log.warning("%s: 'runtime-config:' is deprecated; put its keys at the top level",
                    source)
        if not isinstance(runtime, dict):
            raise ConfigError(f"{source}: runtime-config: must be a mapping")
        config = {**runtime, **config}
    name = config.get("name")
    if not isinstance(name, str) or not name or "." in name:
        raise ConfigError(f"{source}: 'name' must be the service's name (no dots)")
    mesh_block = dict(config.pop("dripline_mesh", None) or {})
    for key in _MESH_KEYS & set(config):
        mesh_block[key] = config.pop(key)
    mesh = mesh_from(mesh_block, password_file=password_file, where=f"{source}: dripline_mesh")
    classes = Classes()
    service_class = classes.resolve(config.get("module", "Service"), f"{source}: {name}")
    endpoint_specs = config.pop("endpoints", None) or []
    if not isinstance(endpoint_specs, list):
        raise ConfigError(f"{source}: endpoints: must be a list of mappings")
    endpoints = []
    for index, spec in enumerate(endpoint_specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ConfigError(f"{source}: endpoints[{index}]: needs a 'name' and a 'module'")
        where = f"{source}: endpoint {spec['name']!r}"
        cls = classes.resolve(spec.get("module"), where)
        endpoints.append(_construct(cls, spec, where))
    names = [endpoint.name for endpoint in endpoints]
    for endpoint_name in names:
        if names.count(endpoint_name) > 1 or endpoint_name == name:
            raise ConfigError(f"{source}: endpoint name {endpoint_name!r} is used twice")
    service_spec = {key: value for key, value in config.items() if key != "endpoints"}
    return _construct(service_class, service_spec, f"{source}: {name}", endpoints=endpoints,
                      mesh=mesh, versions=classes.versions)


def load_yaml(path: str) -> Any:
    """The YAML document in ``path``; errors are one line with the file and position."""
    import yaml

    try:
        with open(path, encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: "
                          f"{getattr(error, 'problem', None) or error}") from None


def service_from_table(**table: Any) -> Any:
    """The factory for a ``[services.X]`` table of a dropins config file: the table holds what
    a dl-serve YAML file holds (``name``, ``endpoints``, ``dripline_mesh``, ...)::

        [services.lab]
        factory = "dropins.dripline:service_from_table"
        name = "lab"
        endpoints = [{name = "peaches", module = "KeyValueStore", initial_value = 0.75}]
    """
    password_file = table.pop("password_file", None)
    return build_service(table, password_file=password_file, source="table")
