"""The stitch split (``stitch.test``): each subject's test images, as the stitch, encode and export
stages hold them out. One function, so that the three stages test on the same images."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.science.splits import split_test_images


def held_out_images(stitch: SimpleNamespace, index: pd.DataFrame, raw: Path) -> dict[str, list[str]]:
    """{subject: its test images, in ``index``'s order} under ``stitch`` (the params section: test,
    test_fraction, min_test, seed), from ``index`` (a row per subject and image, with
    ``presentations``) and the stimulus release's list of repeated images in ``raw`` when present;
    a split that leaves a subject too few test images is a one-line error."""
    listed = Path(raw) / bids.REPEATED_LIST
    repeated = set(listed.read_text().split()) if listed.is_file() else None
    try:
        is_test = split_test_images(index, stitch.test, stitch.test_fraction, stitch.min_test, stitch.seed, repeated)
    except ValueError as exc:
        raise NeurolatentError(f"stitch.test: {exc}") from None
    return {subject: list(rows.loc[is_test[rows.index], "image_name"]) for subject, rows in index.groupby("subject")}
