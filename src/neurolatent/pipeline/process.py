"""The processes around a stage: its signals (SIGTERM and Ctrl-C end a run once main catches
them), which process launched it (under DVC, the dvc process), and ending with it."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path


#: what DVC runs a stage's command through (``$SHELL -c``, or /bin/sh), which may not exec it
SHELLS = {"sh", "bash", "dash", "zsh", "fish", "ksh"}


def process_stat(pid: int) -> tuple[str, int, str, int]:
    """(state, parent pid, command name, start time in clock ticks since boot) of a Linux process,
    from /proc/<pid>/stat; OSError when it is gone."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    name = stat[stat.index("(") + 1: stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), name, int(fields[19])


def launcher_pid() -> int:
    """The nearest ancestor that is not a shell: under DVC, the dvc process that runs this stage."""
    pid = os.getppid()
    while True:
        _, parent, name, _ = process_stat(pid)
        if name not in SHELLS or parent <= 1:
            return pid
        pid = parent


def end_with_dvc() -> None:
    """Under DVC (``DVC_STAGE`` is set; Linux), end as on SIGTERM when the dvc process that runs
    this stage dies, rather than run on as an orphan that writes its outputs after dvc is gone:
    a daemon thread checks every second that it is alive (not gone, not a zombie)."""
    if "DVC_STAGE" not in os.environ or not Path("/proc/self/stat").is_file():
        return
    import time

    try:
        launcher = launcher_pid()
    except (OSError, ValueError):  # an ancestor ended while we looked: nothing left to watch
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                alive = process_stat(launcher)[0] != "Z"
            except (OSError, ValueError):
                alive = False
            if not alive:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="dvc-watch", daemon=True).start()


#: seconds between deliveries of a SIGTERM whose KeyboardInterrupt has not reached main: longer
#: than removing a stage's temporary outputs takes, which a new delivery would cut short
REDELIVER_S = 10.0
#: the interrupts main has caught (the signal handler ignores the signal once there is one)
_CAUGHT: list[str] = []


def _interrupt(signum: int, frame) -> None:
    """The signal as KeyboardInterrupt, and again every REDELIVER_S seconds until main catches it:
    Python drops an exception raised while it runs a finaliser or a weakref callback (seen under
    load: a SIGTERM that arrived in SQLAlchemy's registry clean-up was printed as "Exception
    ignored", and the stage whose dvc had died ran on to write its outputs)."""
    if _CAUGHT:
        return
    again = threading.Timer(REDELIVER_S, lambda: _CAUGHT or os.kill(os.getpid(), signum))
    again.daemon = True
    again.start()
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _unraisable(unraisable) -> None:
    """No traceback for a KeyboardInterrupt that Python dropped (SIGTERM and SIGINT come again:
    _interrupt); any other exception raised where Python cannot raise it goes to Python's own hook."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


def interrupt_caught(name: str) -> None:
    """Main caught the interrupt ``name`` (SIGTERM, SIGINT): no more deliveries of it."""
    _CAUGHT.append(name)


def handle_signals() -> None:
    """SIGTERM and Ctrl-C (SIGINT) end a run once main catches them (temporary outputs removed, the
    MLflow run KILLED); when DVC runs the stage, so does the end of the dvc process."""
    _CAUGHT.clear()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _unraisable
    end_with_dvc()
