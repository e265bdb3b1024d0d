"""The processes around a stage: a SIGTERM or Ctrl-C that reaches main even when Python drops the
first one; this process's own /proc entry and launcher read back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from neurolatent.pipeline.process import SHELLS, process_stat


def test_process_stat_reads_this_process_and_its_parent():
    state, parent, name, started = process_stat(os.getpid())
    assert state in ("R", "S")  # running now, or asleep between scheduler slices
    assert parent == os.getppid()
    assert name.startswith("python") or name.startswith("pytest")
    assert started > 0


def test_process_stat_of_a_gone_process_is_an_oserror():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: no /proc entry left
    with pytest.raises(OSError):
        process_stat(child.pid)


def test_the_launcher_skips_the_shells_between_it_and_us():
    """A python started through ``sh -c`` (as DVC runs a stage's command) finds the process that ran
    the shell (this test), not the shell."""
    code = "from neurolatent.pipeline.process import launcher_pid; print(launcher_pid())"
    # `; true` keeps sh from exec-ing python in its place: a shell stays between
    out = subprocess.run(["sh", "-c", f"{sys.executable} -c '{code}'; true"], capture_output=True, text=True,
                         check=True).stdout
    assert int(out) == os.getpid()
    assert "sh" in SHELLS


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_dropped_in_a_finaliser_is_delivered_again(name):
    """Python drops an exception raised while a finaliser runs (and prints "Exception ignored" with
    a traceback): the stage's SIGTERM or Ctrl-C comes again until main catches it, instead of the stage
    running on, and the dropped one prints nothing."""
    code = textwrap.dedent(f"""
        import os, signal, time
        from neurolatent.pipeline import process
        process.REDELIVER_S = 0.5
        process.handle_signals()
        class Finalised:
            def __del__(self):
                os.kill(os.getpid(), signal.{name})
                time.sleep(0.2)  # the handler runs here, in the finaliser: its KeyboardInterrupt is dropped
        Finalised()
        print("ran on", flush=True)
        try:
            time.sleep(30)
        except KeyboardInterrupt as exc:
            print("interrupted", exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["ran on", f"interrupted {name}"], result.stderr
    assert result.stderr == ""
