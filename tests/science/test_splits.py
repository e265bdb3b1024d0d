"""Which images are held out: the repeated ones, or a seeded share of each subject's."""

from __future__ import annotations

import pandas as pd
import pytest

from neurolatent.science.splits import split_test_images


def test_split_takes_repeats_or_a_seeded_holdout():
    images = pd.DataFrame({"subject": ["CSI1"] * 10 + ["CSI2"] * 10, "image_name": [f"i{i}" for i in range(20)],
                           "presentations": [2, 1] * 5 + [3, 1] * 5})
    test = split_test_images(images, "repeats", 0.2, 2, 0)
    assert list(test) == [True, False] * 10
    holdout = split_test_images(images, "holdout", 0.3, 2, 0)
    assert holdout.groupby(images["subject"]).sum().tolist() == [3, 3]
    assert (holdout == split_test_images(images, "holdout", 0.3, 2, 0)).all()
    with pytest.raises(ValueError, match="CSI1 has 0 test images"):
        split_test_images(images.assign(presentations=1), "repeats", 0.2, 2, 0)
