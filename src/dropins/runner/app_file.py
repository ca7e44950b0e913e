"""``dropins --app FILE.py``: run the service tree a Python file defines as ``application``.

This is the successor of twistd's ``.tac`` files: plain Python, executed once, under the module
name ``__dropins_app__`` (so an ``if __name__ == "__main__"`` block does not run).  Its
``application`` may be an ``Application`` (its uid, gid and shutdown timeout are kept unless the
runner's options say otherwise) or any other service, which is then wrapped in one.
"""

from __future__ import annotations

import os
from typing import Any

from dropins.runner.errors import FAILURE, RunnerError, UsageError, one_line


def _where(error: BaseException, path: str) -> str:
    """``file:line`` of the innermost frame of ``path`` in the traceback, else ``path``."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f"{path}:{error.lineno}"
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if os.path.abspath(traceback.tb_frame.f_code.co_filename) == os.path.abspath(path):
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return f"{path}:{line}" if line else path


def load_application(path: str) -> Any:
    """Execute ``path`` and return its ``application``; raise ``RunnerError`` saying what failed."""
    if not os.path.isfile(path):
        raise UsageError(f"--app {path}: no such file; give the path of a Python file that "
                         "defines 'application'")
    import runpy

    try:
        namespace = runpy.run_path(path, run_name="__dropins_app__")
    except SystemExit:
        raise RunnerError(f"{path} called sys.exit() while being loaded", FAILURE)
    except Exception as error:
        message = error.msg if isinstance(error, SyntaxError) else one_line(error)
        raise RunnerError(f"{_where(error, path)}: {type(error).__name__}: {message}", FAILURE)
    if "application" not in namespace:
        raise RunnerError(f"{path} defines no 'application'; assign the service to run to a "
                          "module-level variable named application", FAILURE)
    application = namespace["application"]
    if not all(callable(getattr(application, method, None))
               for method in ("privileged_start", "start", "stop")):
        raise RunnerError(f"'application' in {path} is not a service (it is "
                          f"{type(application).__name__}); use dropins.Application", FAILURE)
    return application
