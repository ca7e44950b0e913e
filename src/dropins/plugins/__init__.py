"""dropins' own plugin package: built-in service makers, checker factories, endpoint parsers.

Other distributions add plugins here through the ``dropins.plugins`` entry-point group, or, in
development, through a ``dropins/plugins/`` folder without ``__init__.py`` on ``sys.path``.
"""

from dropins.plugin.paths import plugin_package_paths

__path__.extend(plugin_package_paths(__name__))
