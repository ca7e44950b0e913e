"""Finding the application named by ``--wsgi`` / ``--asgi``.

Both spellings are accepted: ``package.module:attribute`` (as most servers write it) and the
fully dotted ``package.module.attribute`` (as ``twistd web --wsgi`` does).  The current
folder is importable, as it is for ``python -m``, so ``dropins web --wsgi hello.app`` works
beside ``hello.py``.  Every failure becomes a one-line UsageError naming the option, the name
and the reason, with the file and line of an exception raised while importing the module.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

from dropins.options import UsageError

__all__ = ["load_application"]


def load_application(spec: str, option: str) -> Any:
    """Import and return the object named by ``spec``; ``option`` (``--wsgi``) is for messages."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, colon, attribute = spec.partition(":")
    if not colon:
        module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute or not all(
            part.isidentifier() for part in [*module_name.split("."), *attribute.split(".")]):
        raise UsageError(f"{option} {spec!r}: expected 'module:name' or 'module.name'")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise UsageError(f"{option} {spec!r}: no module named {error.name!r} (is it "
                             f"installed, or in the current folder?)") from None
        raise UsageError(f"{option} {spec!r}: {_describe(error)}") from None
    except Exception as error:
        raise UsageError(f"{option} {spec!r}: importing {module_name} failed: "
                         f"{_describe(error)}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"{option} {spec!r}: module {module_name!r} has no attribute "
                             f"{attribute!r}") from None
    if not callable(target):
        raise UsageError(f"{option} {spec!r}: {type(target).__name__} object is not callable")
    return target


def _describe(error: BaseException) -> str:
    """``ErrorType: message (file.py:12)``, pointing at the innermost frame of the import."""
    # A SyntaxError's str() ends with "(file.py, line 1)": its msg alone, the place follows.
    message = str(error.msg if isinstance(error, SyntaxError) else error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    if isinstance(error, SyntaxError) and error.filename:
        return f"{text} ({os.path.basename(error.filename)}:{error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    user_frames = [frame for frame in frames if "importlib" not in frame.filename]
    if user_frames:
        frame = user_frames[-1]
        text += f" ({os.path.basename(frame.filename)}:{frame.lineno})"
    return text
