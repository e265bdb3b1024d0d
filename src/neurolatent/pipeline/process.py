"""The processes around a stage: which process launched it (under DVC, the dvc process), and
ending with it."""

from __future__ import annotations

import os
import signal
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
    import threading
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
