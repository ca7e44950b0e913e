"""Compiling console input with top-level ``await`` and running it on the event loop.

What ``python -m asyncio`` does, for many sessions in a server: input is compiled in the
interactive ("single") mode with ``PyCF_ALLOW_TOP_LEVEL_AWAIT``, so that ``await x`` works at
the prompt; code that awaits compiles to a coroutine, which runs as a task on the server's own
loop (so a session can be interrupted by cancelling that task, and the services keep running
while a statement awaits).  ``codeop`` tells a complete statement from one that needs more
lines (a ``def``, a ``for``), exactly as the standard interactive console does.
"""

from __future__ import annotations

import ast
import asyncio
import codeop
import inspect
import traceback
import types
from typing import Any

__all__ = ["StatementCompiler", "format_compile_error", "format_error", "run_statement"]


class StatementCompiler:
    """Compiles one statement at a time; remembers ``from __future__`` imports, as the REPL does.

    Calling it returns the code of a complete statement, None when more lines are needed, and
    raises ``SyntaxError`` (or ``ValueError``/``OverflowError``, as ``compile`` does) for bad
    input.
    """

    def __init__(self, filename: str = "<console>") -> None:
        self.filename = filename
        self._compile = codeop.CommandCompiler()
        self._compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

    def __call__(self, source: str) -> types.CodeType | None:
        return self._compile(source, self.filename, "single")


async def run_statement(code: types.CodeType, namespace: dict[str, Any]) -> BaseException | None:
    """Run compiled ``code`` in ``namespace``; return the exception it raised, if any.

    Every exception is returned rather than raised, ``SystemExit`` and ``KeyboardInterrupt``
    included: raised out of a task, those two would stop the server's event loop.  Only the
    task's own cancellation (an interrupt) propagates.
    """
    try:
        result = types.FunctionType(code, namespace)()
        if code.co_flags & inspect.CO_COROUTINE:
            await result
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        return error
    return None


def format_compile_error(error: BaseException) -> str:
    """A statement that does not compile, as the interactive interpreter shows it: the
    message and the caret, without the compiler's frames."""
    return "".join(traceback.format_exception_only(type(error), error))


def format_error(error: BaseException) -> str:
    """The traceback of what a statement raised, without this module's frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))
