"""Progress that reads well wherever stderr goes: a bar on a terminal, time-stamped lines in a log.

The library takes progress as an argument (an iterable wrapper or an ``update`` callback); the
stages hand it these."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger(__name__)

#: seconds between a long job's log lines (#37: every stage that runs for minutes says how far it is
#: at least every ~10 s)
LOG_EVERY_S = 10


class _Discard:
    """A stream that keeps nothing: where tqdm's own ``\\r`` and newlines go in a log file."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _LogLines(tqdm):
    """tqdm that writes a log line where it would redraw its bar (so at most every ``mininterval``),
    and one at the end of a bar that is left (``leave``)."""

    def display(self, msg=None, pos=None):
        if self.n and (self.leave or self.n < (self.total or 0)):
            log.info("%s", self.format_meter(**{**self.format_dict, "ncols": 0}))
        return True


def progress(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", leave: bool = True) -> tqdm:
    """A progress bar over ``iterable`` (or ``total`` manual updates) that reads well wherever
    stderr goes: tqdm's bar on a terminal (redrawn at most every 2 s); in a log file or under DVC's
    captured output, one time-stamped log line per :data:`LOG_EVERY_S` (when work was done since the
    last) and one at the end, with no ``\\r``. The line says what, done/total, rate and time left."""
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, mininterval=2)
    # miniters=1 and maxinterval=mininterval: tqdm would otherwise print whenever its adaptive
    # step count is reached or its monitor thread wakes, not every LOG_EVERY_S
    return _LogLines(iterable, total=total, desc=desc, unit=unit, leave=leave, mininterval=LOG_EVERY_S,
                     maxinterval=LOG_EVERY_S, miniters=1, file=_Discard())
