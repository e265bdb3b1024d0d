"""The encode stage's figures: the partition bars (with the Algonauts panel where the table has
scores) and the winning band's map on a mask."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.figures.encode import variance_partition_bars, winning_band_map


def _partition(scores: bool) -> pd.DataFrame:
    rows = []
    for roi in ("EarlyVis", "LOC"):
        for band in ("lowlevel", "object", "noise"):
            rows.append({"partition": "planted", "roi": roi, "part": band, "kind": "share", "r2": 0.3,
                         "ci_low": 0.2, "ci_high": 0.4})
        rows.append({"partition": "planted", "roi": roi, "part": "full", "kind": "full", "r2": 0.6,
                     "ci_low": 0.5, "ci_high": 0.7, **({"algonauts": 80.0} if scores else {})})
    return pd.DataFrame(rows)


def test_partition_bars_add_the_algonauts_panel_only_with_scores(tmp_path):
    variance_partition_bars(_partition(True), tmp_path / "with.png")
    variance_partition_bars(_partition(False), tmp_path / "without.png")
    assert "Algonauts score" in (tmp_path / "with.svg").read_text()
    without = (tmp_path / "without.svg").read_text()
    assert "Algonauts score" not in without and "lowlevel" in without


def test_winning_band_map_draws_every_band_on_the_mask(tmp_path):
    mask = np.zeros((6, 6, 4), dtype=np.uint8)
    mask[1:5, 1:5, 1:3] = 1
    nib.save(nib.Nifti1Image(mask, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "mask.nii.gz")
    winner = np.arange(int(mask.sum())) % 3 - 1  # -1: no band predicts the voxel
    winning_band_map(winner, ("pixels", "image_ae"), tmp_path / "mask.nii.gz", "the winners", tmp_path / "map.png")
    svg = (tmp_path / "map.svg").read_text()
    assert "pixels" in svg and "image AE" in svg and "the winners" in svg
