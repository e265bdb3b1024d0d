"""Progress that a person can read: a bar on a terminal, time-stamped lines in a log file."""

import logging
import subprocess
import sys

from neurolatent.pipeline.progress import progress


def test_in_a_log_file_progress_is_log_lines_without_carriage_returns(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="neurolatent.pipeline.progress"):
        bar = progress(total=3, desc="runs", unit="run")
        for _ in range(3):
            bar.update()
        bar.close()
        for _ in progress(range(5), desc="epoch 1", unit="batch", leave=False):
            pass
    assert capsys.readouterr().err == ""  # nothing drawn, no \r
    assert [r.getMessage()[:15] for r in caplog.records] == ["runs: 100% 3/3 "]


def test_a_stage_log_has_time_stamps_and_no_carriage_returns(tmp_path):
    """What `dvc repro > log 2>&1` keeps of a stage that draws bars: lines, each with its time."""
    script = ("import logging\n"
              "logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s', datefmt='%H:%M:%S')\n"
              "from neurolatent.pipeline.parallel import parallel_map\n"
              "assert parallel_map(abs, [-1, -2, -3], 1, desc='runs', unit='run') == [1, 2, 3]\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = result.stderr.splitlines()
    assert "\r" not in result.stderr and len(lines) == 1
    assert lines[0][2] == ":" and lines[0][5] == ":" and "neurolatent.pipeline.progress: runs: 100% 3/3" in lines[0]


def test_in_a_log_file_long_work_says_how_far_it_is_every_ten_seconds(caplog):
    # a clock of our own: updates at 4 s, 11 s, 15 s and 23 s write a line at 11 s and 23 s (10 s
    # after the last line), each with done/total, the rate and the time left
    with caplog.at_level(logging.INFO, logger="neurolatent.pipeline.progress"):
        bar = progress(total=10, desc="encode", unit="step")
        now = [0.0]
        bar._time = lambda: now[0]
        bar.start_t = bar.last_print_t = 0.0
        for now[0] in (4.0, 11.0, 15.0, 23.0):
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split()[2] for line in lines] == ["2/10", "4/10"], lines
    assert "[00:11<" in lines[0] and "s/step]" in lines[0], lines  # elapsed<left, rate
