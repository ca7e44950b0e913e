"""Discovery: one plugin package, three sources, one ordered list of records.

Order is deterministic: the package's directories in ``__path__`` order (modules sorted by name
within each), then entry points (by distribution name, then entry-point name), then namespace
extensions (sorted).  Operator policy is applied on that list: ``DROPINS_DISABLE=a,b`` disables
plugins by name, and when two usable plugins share a name the first wins, the other is listed as
``shadowed`` and a warning names both places.  Broken and disabled records claim no name, so a
broken module never hides a working plugin of the same name.

Every call looks at the files again (a ``stat`` per module and per distribution), so a plugin
file added or a distribution installed while the process runs is found by the next call.

A call is one ``ScanSession``: the sources decide *what* to rescan, the session does the
rescanning the same way for all of them, importing ``dropins.plugin.scan`` (and zope.interface
with it) only when a rescan actually happens.  It lives here rather than in a module of its own
because every listing imports it, and each module imported costs a listing about 0.1 ms.
"""

from __future__ import annotations

import gc
import os
import sys

from dropins.plugin.diagnostics import describe_failure, strict_from_environment, warn
from dropins.plugin.directories import scan_directory
from dropins.plugin.entries import ENVIRONMENT, KEY, REASON, STATE, import_environment, is_broken
from dropins.plugin.entrypoints import scan_entry_points
from dropins.plugin.records import PluginError, PluginInfo

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from dropins.plugin.entries import Entry
    from dropins.plugin.scan import Importer

__all__ = ["DEFAULT_PACKAGE", "ScanSession", "get_plugins", "interface_identifier",
           "iter_plugin_info", "package_name", "rebuild_cache", "resolve_package"]

#: The plugin package used when none is given.
DEFAULT_PACKAGE = "dropins.plugins"

_warned: set[str] = set()


class ScanSession:
    """State shared by the sources during one ``iter_plugin_info``/``get_plugins`` call.

    ``rebuild`` ignores every cached entry (``dropins plugins cache --rebuild``); ``strict``
    raises ``PluginError`` for a broken module, cached or fresh, instead of listing it.
    """

    def __init__(self, *, rebuild: bool = False, strict: bool = False) -> None:
        self.rebuild = rebuild
        self.strict = strict
        self.rescanned = 0
        self._importer: Importer | None = None
        self._environment: list[list[Any]] | None = None

    def rescan(self, module_name: str, path: str, key: Any, **options: Any) -> Entry:
        """Import and describe one module (see ``scan.scan_module``); report it if broken.

        The import is marked beforehand (``dropins.plugin.markers``): a module whose last two
        imports ended the process (``os._exit()``, or kills) is listed as broken instead of
        imported again.

        A broken module is reported here, once per (file state, failure): not when its broken
        entry is merely read back, nor when it is retried because the import environment
        changed (see ``still_broken``) and fails again the same way.  A broken entry records
        the import environment as it is *after* the attempt, which may itself have added a
        ``__pycache__`` folder to a ``sys.path`` directory.
        """
        from dropins.plugin import markers
        from dropins.plugin.scan import Importer, ended_process, scan_module

        if self._importer is None:
            self._importer = Importer()
        self.rescanned += 1
        previous = options.get("previous")
        if markers.begin_import(module_name, path, key):
            entry = ended_process(module_name, path, key, previous)
        else:
            try:
                entry = scan_module(self._importer, module_name, path, key, **options)
            finally:
                markers.end_import()
        if entry[STATE] == "broken":
            self._environment = import_environment()
            entry[ENVIRONMENT] = self._environment
            message = f"plugin module {path} failed to import: {entry[REASON]}"
            if self.strict:
                raise PluginError(message)
            if self.rebuild or not (isinstance(previous, list) and is_broken(previous)
                                    and previous[KEY] == key
                                    and previous[REASON] == entry[REASON]):
                warn(message)
        return entry

    def close(self) -> None:
        """End the pass: the importer gives SIGINT back to its previous handler."""
        if self._importer is not None:
            self._importer.close()

    def still_broken(self, entry: Entry) -> bool:
        """Whether a cached broken ``entry`` is still worth believing: the import environment
        (``sys.path`` and its directories' mtimes) is the one it failed in.

        Otherwise a dependency may have been installed since, and the module is retried even
        though its own file did not change.  The fingerprint is taken once per session, and
        only when a broken entry is met, so a listing of healthy plugins never pays for it.
        """
        if self._environment is None:
            self._environment = import_environment()
        return bool(entry[ENVIRONMENT] == self._environment)

    def check_cached(self, entry: Entry, path: str) -> None:
        """In strict mode, a broken module read from the cache raises as well."""
        if self.strict and is_broken(entry):
            raise PluginError(f"plugin module {path} failed to import: {entry[REASON]}")


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warn(message)


def interface_identifier(interface: Any) -> str | None:
    """The dotted identifier of ``interface`` (an interface object or already a string)."""
    if interface is None or isinstance(interface, str):
        return interface
    identifier = getattr(interface, "__identifier__", None)
    if not isinstance(identifier, str):
        raise TypeError(f"expected an interface or its dotted name, got {interface!r}")
    return identifier


def resolve_package(name: str) -> tuple[list[str], bool]:
    """The directories of plugin package ``name`` and whether it is a namespace package.

    Raises ``PluginError("no plugin package named 'x'")`` when it cannot be imported.
    """
    try:
        # What importlib.import_module does for an absolute name, without importing importlib
        # (and warnings with it) on the listing path.
        __import__(name)
        package = sys.modules[name]
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise PluginError(f"no plugin package named {name!r}") from None
        raise PluginError(f"plugin package {name!r} failed to import: "
                          f"{describe_failure(error, None)}") from None
    except (ValueError, TypeError):
        raise PluginError(f"no plugin package named {name!r}") from None
    except Exception as error:
        raise PluginError(f"plugin package {name!r} failed to import: "
                          f"{describe_failure(error, None)}") from None
    path = getattr(package, "__path__", None)
    if path is None:
        raise PluginError(f"{name!r} is a module, not a plugin package")
    return ([entry for entry in path if isinstance(entry, str)],
            package.__file__ is None or _declares_namespace(package.__file__))


def _declares_namespace(init_file: str) -> bool:
    """Whether the package ``__init__.py`` at ``init_file`` makes an old-style namespace package
    (``__path__ = __import__('pkgutil').extend_path(__path__, __name__)``, as dripline's
    ``dripline/extensions`` does, or setuptools' ``declare_namespace(__name__)``): its
    subpackages are then extensions, as in a PEP 420 namespace package.

    Only a statement counts: a ``__path__`` assignment calling ``extend_path``, or a call of
    ``declare_namespace``, not the words in a comment or inside another statement, so that an
    ordinary plugin package mentioning them keeps its subpackages unimported.  Lines are read
    without ``ast``, whose import would cost a listing more than the rest of it.
    """
    try:
        with open(init_file, "rb") as stream:
            source = stream.read(1 << 16)
    except (OSError, TypeError):
        return False
    if b"extend_path" not in source and b"declare_namespace" not in source:
        return False  # the common case: one search of a short file
    for line in source.splitlines():
        code = line.partition(b"#")[0].strip()
        if code.startswith(b"__path__"):
            value = code[len(b"__path__"):].lstrip()
            if value[:1] == b"=" and value[1:2] != b"=" and b"extend_path(" in value:
                return True
        elif code.startswith((b"declare_namespace(", b"pkg_resources.declare_namespace(",
                              b"__import__(")) and b"declare_namespace(" in code:
            return True
    return False


def package_name(package: Any) -> str:
    """The dotted name of ``package``: ``None`` (the default package), a name, or the package
    module itself (``get_plugins(IMaterial, matsim.plugins)``, as ``twisted.plugin.getPlugins``
    takes it), so code ported from Twisted works unchanged."""
    if package is None:
        return DEFAULT_PACKAGE
    if isinstance(package, str):
        return package
    name = getattr(package, "__name__", None) if isinstance(package, type(sys)) else None
    if not isinstance(name, str):
        raise TypeError(f"expected a plugin package (its dotted name or the module), "
                        f"got {package!r}")
    return name


def _disabled_names() -> set[str]:
    value = os.environ.get("DROPINS_DISABLE", "")
    return {name.strip() for name in value.split(",") if name.strip()}


def _apply_policy(records: list[PluginInfo]) -> None:
    disabled = _disabled_names()
    if not disabled:  # the usual case, checked in bulk: nothing disabled, no name twice
        usable = [record.name for record in records if record.state == "ok"]
        if len(set(usable)) == len(usable):
            return
    winners: dict[str, PluginInfo] = {}
    for record in records:
        if record.name in disabled:
            record.state, record.reason = "disabled", "disabled by DROPINS_DISABLE"
            continue
        if record.state != "ok":
            continue
        first = winners.setdefault(record.name, record)
        if first is record:
            continue
        record.state = "shadowed"
        record.reason = f"shadowed by {first.module}:{first.attribute} from {first.path}"
        _warn_once(f"plugin name {record.name!r} is provided twice: {first.module}:"
                   f"{first.attribute} from {first.path} is used, {record.module}:"
                   f"{record.attribute} from {record.path} is shadowed")


def _discover(package: str, session: ScanSession) -> list[PluginInfo]:
    """All records of ``package``, policy applied, with the cyclic garbage collector paused.

    Reading a cache allocates tens of thousands of small containers and no cycles; left on, the
    collector walks them repeatedly and doubles the cost of a warm listing.  It is restored
    (and then collects whatever a plugin import left behind) before returning.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _discover_records(package, session)
    finally:
        session.close()
        if collecting:
            gc.enable()


def _discover_records(package: str, session: ScanSession) -> list[PluginInfo]:
    directories, namespace = resolve_package(package)
    modules: list[PluginInfo] = []
    extensions: list[PluginInfo] = []
    seen: set[str] = set()
    for directory in directories:
        found, extended = scan_directory(directory, package, session, namespace=namespace,
                                         claimed=seen)
        modules += found
        extensions += extended
    records = modules + scan_entry_points(package, session) + extensions
    _apply_policy(records)
    return records


def iter_plugin_info(interface: Any = None, package: Any = None, *,
                     strict: bool | None = None) -> Iterator[PluginInfo]:
    """Yield a record for every plugin of ``package`` (a dotted name or the package module;
    default ``dropins.plugins``), in discovery order, in every state, without importing plugin
    code when the cache is valid.

    ``interface`` (an interface or its dotted identifier) keeps the records that provide it,
    plus broken records whose interfaces are unknown (a module never seen working), so that a
    broken plugin can be explained rather than silently missing.  ``strict`` (default: the
    ``DROPINS_STRICT`` environment variable) raises ``PluginError`` for a broken module.
    """
    identifier = interface_identifier(interface)
    session = ScanSession(strict=strict_from_environment() if strict is None else strict)
    records = _discover(package_name(package), session)
    if identifier is not None:
        records = [record for record in records if identifier in record.interfaces
                   or (record.state == "broken" and not record.interfaces)]
    yield from records


def get_plugins(interface: Any, package: Any = None, *,
                strict: bool | None = None) -> Iterator[Any]:
    """Yield the loaded plugin objects of ``package`` that provide ``interface``.

    Only usable (``ok``) plugins are yielded; broken ones were reported when discovered, and a
    plugin that fails to load now is reported once and skipped (or raises in strict mode).
    """
    identifier = interface_identifier(interface)
    strict = strict_from_environment() if strict is None else strict
    for record in iter_plugin_info(identifier, package, strict=strict):
        if record.state != "ok" or (identifier is not None and identifier not in record.interfaces):
            continue
        try:
            plugin = record.load()
        except PluginError as error:
            if strict:
                raise
            _warn_once(str(error))
            continue
        yield plugin


def rebuild_cache(package: Any = None) -> list[PluginInfo]:
    """Rescan every plugin module of ``package`` and rewrite its caches; return the records.

    What ``dropins plugins cache --rebuild`` runs, e.g. after installing plugins in a Dockerfile.
    """
    return _discover(package_name(package), ScanSession(rebuild=True))
