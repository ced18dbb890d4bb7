"""Ctrl-C and SIGTERM that always reach a molpre command, whatever C code is running.

RDKit (2025.03 and later) installs its own SIGINT handler around conformer embedding,
substructure search, CIP labelling and bond perception: a Ctrl-C that lands inside such a
call only cancels that call (an embedding then "fails") and never reaches Python, so
``molpre conformers`` or ``molpre audit`` ran on through the first Ctrl-C (or every one).

:func:`own_interrupts`, used by the command line around a whole command, takes SIGINT away
from every handler: SIGINT is blocked in the main thread before any other thread starts (all
later threads inherit the block), and one thread receives it with ``sigwait`` and hands it to
the main thread as :data:`FORWARD` (a signal nobody else installs a handler for), whose
handler runs whatever Python-level SIGINT handler is current (``KeyboardInterrupt`` by
default; ``molpre pretrain`` installs a graceful stop). A thread-directed signal also wakes
the main thread from a blocking wait. SIGTERM raises :class:`Terminated` (a
KeyboardInterrupt), so a command cleans up (worker pools, temporary files, servers) when
killed. Child processes get SIGINT back: forked children at fork, others when they import
molpre (:func:`release_inherited_block`, only in children of an owning command, named by
``$MOLPRE_SIGINT_OWNER``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The signal that carries a received SIGINT to the main thread.
FORWARD = getattr(signal, "SIGUSR2", None)
#: The process id of the command that owns SIGINT (inherited by its child processes).
OWNER_ENV = "MOLPRE_SIGINT_OWNER"
_ACTIVE = {"on": False}


class Terminated(KeyboardInterrupt):
    """SIGTERM: end the command as after Ctrl-C, with cleanup (exit status 143)."""


def supported() -> bool:
    """Whether this platform can block and wait for signals (POSIX)."""
    return FORWARD is not None and hasattr(signal, "pthread_sigmask") and hasattr(signal, "sigwait")


def release_inherited_block() -> None:
    """Unblock SIGINT in this thread when it was inherited blocked from a command that owns
    its interrupts (a child process of it): called when molpre is imported."""
    owner = os.environ.get(OWNER_ENV)
    if not supported() or not owner or owner == str(os.getpid()):
        return
    if signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def _after_fork_in_child() -> None:
    if _ACTIVE["on"]:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def _run_sigint_handler(signum, frame) -> None:
    """In the main thread: what a real SIGINT would have done."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler != signal.SIG_IGN:
        raise KeyboardInterrupt


def _terminate(signum, frame) -> None:
    raise Terminated


def _forward(main_thread_id: int) -> None:
    """Receive every SIGINT (blocked everywhere) and pass it to the main thread."""
    while True:
        signal.sigwait([signal.SIGINT])
        if not _ACTIVE["on"]:
            return
        signal.pthread_kill(main_thread_id, FORWARD)


@contextmanager
def own_interrupts() -> Iterator[None]:
    """Inside: SIGINT reaches the command's Python handler even while C code that installs
    its own SIGINT handler runs; SIGTERM raises :class:`Terminated`. A no-op outside the
    main thread or on platforms without ``pthread_sigmask``."""
    if not supported() or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (FORWARD, signal.SIGTERM)}
    signal.signal(FORWARD, _run_sigint_handler)
    signal.signal(signal.SIGTERM, _terminate)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    owner = os.environ.get(OWNER_ENV)
    os.environ[OWNER_ENV] = str(os.getpid())
    _ACTIVE["on"] = True
    if not _ACTIVE.get("fork_hook"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _ACTIVE["fork_hook"] = True
    forwarder = threading.Thread(target=_forward, args=(threading.get_ident(),),
                                 name="molpre-sigint", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        _ACTIVE["on"] = False
        if owner is None:
            os.environ.pop(OWNER_ENV, None)
        else:
            os.environ[OWNER_ENV] = owner
        signal.pthread_kill(forwarder.ident, signal.SIGINT)  # ends its sigwait
        forwarder.join(timeout=1.0)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
