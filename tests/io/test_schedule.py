import collections
from importlib import resources

import pandas as pd

from neurolatent.io import bids
from neurolatent.io.schedule import RESOURCE, load_schedule, pack_events_dir

from conftest import REAL_EVENTS


def test_packed_schedule_is_the_real_events_files():
    packed = resources.files("neurolatent.resources").joinpath(RESOURCE).read_bytes()
    assert packed == pack_events_dir(REAL_EVENTS)


def _check_typing(table: pd.DataFrame) -> None:
    """One presentation of each image is typed plainly, the others rep_ (not always the first)."""
    plain = ~table["ImgType"].str.startswith("rep_")
    assert (table[plain].groupby("ImgName").size() == 1).all()
    assert set(table.loc[plain, "ImgName"]) == set(table["ImgName"])


def test_real_schedule_counts():
    table = load_schedule("CSI1")
    assert len(table) == 5254 and table["ImgName"].nunique() == 4916
    assert table[["session", "run"]].drop_duplicates().shape[0] == bids.N_RUNS["CSI1"]
    _check_typing(table)


def test_derived_schedules_keep_the_structure():
    for subject, n_runs in (("CSI3", 142), ("CSI4", 84)):
        table = load_schedule(subject, seed=0)
        runs = table.groupby(["session", "run"]).size()
        assert len(runs) == n_runs and (runs == bids.TRIALS_PER_RUN).all()
        assert table["session"].max() == bids.N_SESSIONS[subject]
        assert (table["Subj"] == subject.removeprefix("CSI")).all()
        _check_typing(table)
        counts = collections.Counter(table["ImgName"].value_counts())
        assert counts[1] > 0.9 * table["ImgName"].nunique() and max(counts) >= 3
    # a derived subject is not a relabelled copy: the trial order differs from its base
    assert (load_schedule("CSI3")["ImgName"] != load_schedule("CSI1")["ImgName"]).mean() > 0.9
    assert load_schedule("CSI3", seed=0).equals(load_schedule("CSI3", seed=0))
