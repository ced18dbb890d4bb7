"""A ``forkserver`` multiprocessing context whose workers never import the user's script.

Python's own forkserver (and spawn) start every worker by re-importing the main module: a
script that calls ``Predictor(..., workers=2).predict(...)`` without an
``if __name__ == "__main__":`` guard then runs again, top to bottom, in the forkserver and
in each worker, which start pools of their own and fail ("An attempt has been made to start
a new process before the current process has finished its bootstrapping phase"). molpre's
tasks are functions of molpre's modules, never of ``__main__``, so its pools need no main
module at all: :func:`forkserver_context` preloads only the modules it is given (never
``'__main__'``, the forkserver's default) and hands its workers no main module to prepare.
A guard-less script therefore runs once. (The price: a task defined in ``__main__`` cannot
run on such a pool; define it in an importable module.)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from multiprocessing import context, forkserver, popen_forkserver, reduction, spawn, util

#: Keys of multiprocessing's preparation data that make a worker import ``__main__``.
MAIN_KEYS = ("init_main_from_path", "init_main_from_name")


def preparation_without_main(name: str) -> dict:
    """What a new worker prepares (sys.path, cwd, ...), without the main module."""
    data = spawn.get_preparation_data(name)
    for key in MAIN_KEYS:
        data.pop(key, None)
    return data


class _Popen(popen_forkserver.Popen):
    """``popen_forkserver.Popen`` sending :func:`preparation_without_main`."""

    def _launch(self, process_obj) -> None:
        prep_data = preparation_without_main(process_obj._name)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        parent_w = os.dup(w)  # the child's sentinel of this process (as the stdlib keeps)
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _Popen(process_obj)


class NoMainForkServerContext(context.ForkServerContext):
    """The forkserver context with workers that do not import ``__main__``."""

    Process = _Process


def forkserver_context(preload: Sequence[str] = ()) -> NoMainForkServerContext:
    """A :class:`NoMainForkServerContext` whose forkserver imports ``preload`` (module
    names; ``'__main__'`` is dropped) once, so that each worker starts fast. The forkserver
    is one per process: the preload of the first pool that starts it holds."""
    ctx = NoMainForkServerContext()
    ctx.set_forkserver_preload([name for name in preload if name != "__main__"])
    return ctx
