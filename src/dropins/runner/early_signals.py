"""The signals to ignore from the first moment of a runner process, before anything is known.

A small module of its own: the CLI calls it before parsing its options (so before it imports
anything heavy), and ``run.prepare`` again for library callers.
"""

from __future__ import annotations

__all__ = ["ignore_sighup"]


def ignore_sighup() -> None:
    """Ignore SIGHUP and SIGUSR1 until ``SignalHandlers.install`` takes them over (no-op where
    they are absent).

    Its default action terminates the process: a logrotate ``postrotate`` that signals the
    pidfile's PID while the services are still starting would otherwise kill them.  Not in
    ``signals``, which imports asyncio.
    """
    import signal

    for name in ("SIGHUP", "SIGUSR1"):
        signum = getattr(signal, name, None)
        if signum is not None:
            try:
                signal.signal(signum, signal.SIG_IGN)
            except (OSError, ValueError):  # not the main thread (dropins used as a library)
                pass
