"""Which images a mapping or an encoding model is tested on: BOLD5000's repeated images, or a
seeded share of each subject's."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from neurolatent.science.constraints import Count, Fraction, Seed, checked


#: the held-out images: BOLD5000's repeated ones, or a seeded share of each subject's
Split = Literal["repeats", "holdout"]


@checked(mode=Split, fraction=Fraction, min_test=Count, seed=Seed)
def split_test_images(images: pd.DataFrame, mode: str, fraction: float, min_test: int, seed: int,
                      repeated: set[str] | None = None) -> pd.Series:
    """Which of each subject's images are test stimuli.

    Parameters
    ----------
    images : DataFrame with columns subject, image_name, presentations (one row per subject x image)
    mode : ``repeats`` (BOLD5000's convention: the images of ``repeated``, the stimulus release's
        list of 113 repeated images, when given; else the images a subject saw more than once) or
        ``holdout`` (a seeded random ``fraction`` of each subject's images)
    min_test : a subject with fewer test images is an error (identification needs candidates)

    Returns
    -------
    bool Series aligned with ``images``: True for test rows.
    """
    if mode == "repeats":
        test = images["image_name"].isin(repeated) if repeated is not None else images["presentations"] > 1
    else:  # holdout (checked)
        test = pd.Series(False, index=images.index)
        rng = np.random.default_rng(seed)
        for _, rows in images.groupby("subject", sort=True):
            chosen = rng.choice(rows.index.to_numpy(), size=max(1, int(round(fraction * len(rows)))), replace=False)
            test.loc[chosen] = True
    counts = test.groupby(images["subject"]).sum()
    if (counts < min_test).any():
        subject = counts.idxmin()
        raise ValueError(f"{subject} has {int(counts.min())} test images under split {mode!r} (at least {min_test} "
                         "needed): select more runs, or use stitch.test: holdout")
    return test
