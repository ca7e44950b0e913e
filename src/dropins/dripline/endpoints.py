"""Endpoint classes: what a request reaches once routed by its first routing-key word.

As in dripline-python, ``get`` and ``set`` with a specifier read and write the attribute of
that name, ``cmd`` calls the method named by the specifier with the payload's ``values`` as
positional and its other keys as keyword arguments; without a specifier they call ``on_get`` /
``on_set``.  ``Entity`` adds calibration and periodic logging of its value as alerts.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any

from dropins.dripline.codes import ReturnCode, ThrowReply

log = logging.getLogger("dropins.dripline")


class Endpoint:
    """A named thing on the mesh; ``service`` is set when it is added to a ``Service``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.service: Any = None

    async def start(self) -> None:
        """Called once the service is connected (Entities start logging here)."""

    async def stop(self) -> None:
        """Called when the service stops."""

    def on_get(self) -> Any:
        raise ThrowReply(ReturnCode.INVALID_METHOD, f"{self.name!r} does not support get")

    def on_set(self, value: Any) -> Any:
        raise ThrowReply(ReturnCode.INVALID_METHOD, f"{self.name!r} does not support set")

    async def handle(self, operation: str, specifier: str, payload: Any) -> Any:
        """Dispatch one request; the result is the reply's payload."""
        payload = payload if isinstance(payload, dict) else {}
        values = payload.get("values", [])
        if not isinstance(values, list):
            values = [values]
        if operation == "get":
            # as dripline-python: an attribute comes back as {"values": [value]}
            result = {"values": [self._attribute(specifier)]} if specifier else self.on_get()
        elif operation == "set":
            if not values:
                raise ThrowReply(ReturnCode.BAD_PAYLOAD, "set needs a payload with 'values'")
            if specifier:
                self._attribute(specifier)  # refuses unknown names before writing
                setattr(self, specifier, values[0])
                result = values[0]
            else:
                result = self.on_set(values[0])
        elif operation == "cmd":
            method = getattr(self, specifier, None) if specifier and not specifier.startswith(
                "_") else None
            if not callable(method):
                raise ThrowReply(ReturnCode.INVALID_METHOD,
                                 f"{self.name!r} has no command {specifier!r}")
            kwargs = {key: value for key, value in payload.items() if key != "values"}
            try:
                inspect.signature(method).bind(*values, **kwargs)
            except TypeError as error:  # wrong arguments: the caller's mistake, not a crash
                raise ThrowReply(ReturnCode.INVALID_VALUE, f"{specifier}: {error}") from None
            result = method(*values, **kwargs)
        else:
            raise ThrowReply(ReturnCode.INVALID_METHOD, f"unknown operation {operation!r}")
        if inspect.isawaitable(result):
            result = await result
        return result

    def _attribute(self, specifier: str) -> Any:
        if specifier.startswith("_") or not hasattr(self, specifier):
            raise ThrowReply(ReturnCode.INVALID_SPECIFIER,
                             f"{self.name!r} has no attribute {specifier!r}")
        return getattr(self, specifier)


def _calibrate(raw: Any, calibration: str | dict[str, Any] | None) -> Any:
    """``value_cal`` from a format string (``"{}*2 V"`` style, evaluated arithmetically when
    possible) or a dict mapping raw values to calibrated ones."""
    if calibration is None:
        return None
    if isinstance(calibration, dict):
        if str(raw) not in {str(key) for key in calibration}:
            raise ThrowReply(ReturnCode.INVALID_VALUE,
                             f"raw value {raw!r} is not in the calibration dict")
        return next(value for key, value in calibration.items() if str(key) == str(raw))
    text = calibration.format(raw)
    try:
        import ast

        return _arithmetic(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError):
        return text


def _arithmetic(node: Any) -> float:
    """Evaluate numbers and + - * / ** only (never eval: a calibration is data, not code)."""
    import ast
    import operator

    operators = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                 ast.Div: operator.truediv, ast.Pow: operator.pow}
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arithmetic(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in operators:
        return operators[type(node.op)](_arithmetic(node.left), _arithmetic(node.right))
    raise ValueError("not arithmetic")


class Entity(Endpoint):
    """An endpoint with a value: calibrated, logged every ``log_interval`` seconds when it moved
    more than the thresholds or ``max_interval`` passed, and after a set if asked."""

    def __init__(self, name: str, *, calibration: str | dict[str, Any] | None = None,
                 get_on_set: bool = False, log_on_set: bool = False, log_interval: float = 0,
                 max_interval: float = 0, max_absolute_change: float = 0,
                 max_fractional_change: float = 0) -> None:
        super().__init__(name)
        self.calibration = calibration
        self.get_on_set = get_on_set
        self.log_on_set = log_on_set
        self.log_interval = float(log_interval)
        self.max_interval = float(max_interval)
        self.max_absolute_change = float(max_absolute_change)
        self.max_fractional_change = float(max_fractional_change)
        self._logger: asyncio.Task[None] | None = None
        self._last_logged: tuple[float, Any] | None = None

    def read(self) -> Any:
        """The raw value (subclasses override this, or ``on_get`` itself)."""
        raise ThrowReply(ReturnCode.INVALID_METHOD, f"{self.name!r} does not support get")

    def on_get(self) -> Any:
        raw = self.read()
        result: dict[str, Any] = {"value_raw": raw}
        if self.calibration is not None:
            result["value_cal"] = _calibrate(raw, self.calibration)
        return result

    async def handle(self, operation: str, specifier: str, payload: Any) -> Any:
        result = await super().handle(operation, specifier, payload)
        if operation == "set" and not specifier and (self.get_on_set or self.log_on_set):
            value = await super().handle("get", "", None)
            if self.log_on_set:
                await self._log(value)
            if self.get_on_set:
                return value
        return result

    async def start(self) -> None:
        if self.log_interval > 0:
            self._logger = asyncio.create_task(self._log_loop())

    async def stop(self) -> None:
        if self._logger is not None:
            self._logger.cancel()
            await asyncio.wait({self._logger})  # done on return; an outer cancel propagates
            self._logger = None

    async def _log_loop(self) -> None:
        while True:
            await asyncio.sleep(self.log_interval)
            try:
                value = await super().handle("get", "", None)
            except Exception as error:
                log.warning("%s: cannot read the value to log it: %s", self.name, error)
                continue
            if self._should_log(value):
                await self._log(value)

    def _should_log(self, value: Any) -> bool:
        if self._last_logged is None:
            return True
        when, before = self._last_logged
        if self.max_interval and time.monotonic() - when >= self.max_interval:
            return True
        if not (self.max_absolute_change or self.max_fractional_change):
            return not self.max_interval
        try:
            new = float(value["value_raw"] if isinstance(value, dict) else value)
            old = float(before["value_raw"] if isinstance(before, dict) else before)
        except (TypeError, ValueError, KeyError):
            return new_differs(value, before)
        change = abs(new - old)
        if self.max_absolute_change and change > self.max_absolute_change:
            return True
        if not self.max_fractional_change or not change:
            return False
        # leaving 0 is an unbounded fractional change: logged, never a ZeroDivisionError
        return not old or change / abs(old) > self.max_fractional_change

    async def _log(self, value: Any) -> None:
        self._last_logged = (time.monotonic(), value)
        if self.service is not None:
            await self.service.send_alert(f"sensor_value.{self.name}", value)


def new_differs(value: Any, before: Any) -> bool:
    return bool(value != before)


class KeyValueStore(Entity):
    """An Entity holding one value: ``get`` returns it, ``set`` replaces it."""

    def __init__(self, name: str, *, initial_value: Any = None, **entity: Any) -> None:
        super().__init__(name, **entity)
        self.value = initial_value

    def read(self) -> Any:
        return self.value

    def on_set(self, value: Any) -> Any:
        self.value = value
        return value
