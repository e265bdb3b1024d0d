"""Few-shot alignment's bookkeeping, on small known inputs: the images subjects share, the order
fits take them, the shared test images, identification with its CI, the headline k, and the design
checked once at construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurolatent.science.fewshot import (SCRATCH, SUBJECTS, FewShotDesign, common_images, common_test_images,
                                         identify, image_order, images_to_reach, side_by_side)
from neurolatent.science.stimuli import StimulusMatrix


def _responses() -> dict[str, StimulusMatrix]:
    return {"A": StimulusMatrix("A", np.zeros((4, 2)), ("a", "b", "c", "x")),
            "B": StimulusMatrix("B", np.zeros((3, 2)), ("c", "b", "a"))}


def test_common_images_and_the_order_of_a_subjects_images():
    responses = _responses()
    assert common_images(responses, ("c",)) == ["a", "b"]
    order = image_order(responses["A"], ["a", "b"], ("c",), seed=0)
    assert sorted(order[:2]) == ["a", "b"] and order[2:] == ["x"]  # the common ones first, then its own
    assert order == image_order(responses["A"], ["a", "b"], ("c",), seed=0)


def test_common_test_images_are_a_seeded_share_or_an_error():
    responses = _responses()
    test = common_test_images(responses, 0.67, 1, 0)
    assert len(test) == 2 and set(test) <= {"a", "b", "c"} and list(test) == sorted(test)
    with pytest.raises(ValueError, match="the subjects share 3 images, 2 of them test images"):
        common_test_images(responses, 0.67, 3, 0)
    with pytest.raises(ValueError, match=r"^fraction: Input should be less than 1 \(got 1.0\)$"):
        common_test_images(responses, 1.0, 1, 0)


def test_identify_perfect_predictions():
    candidates = np.random.default_rng(0).normal(size=(6, 5))
    scores = identify(candidates, candidates, np.random.default_rng(1), 50, 0.9)
    assert (scores.two_way, scores.ci_low, scores.ci_high, scores.top1) == (1.0, 1.0, 1.0, 1.0)


def test_images_to_reach_is_the_fewest_k_reaching_the_share():
    table = pd.DataFrame({"subject": "S", "target": "m", "method": [SCRATCH, SCRATCH, "srm", "srm", "srm"],
                          "k": [10, 40, 5, 10, 20], "two_way": [0.7, 0.8, 0.6, 0.75, 0.9]})
    table = pd.concat([table, pd.DataFrame({"subject": ["S"], "target": [SUBJECTS], "method": ["srm"], "k": [5],
                                            "two_way": [0.9]})])
    assert images_to_reach(table, share=0.9) == {("S", "srm", "m"): 10.0, ("S", SCRATCH, "m"): 40.0}


def test_side_by_side_weighs_each_model_alike():
    names = ("a", "b", "c", "d")
    wide = StimulusMatrix("wide", np.random.default_rng(0).normal(size=(4, 9)), names)
    narrow = StimulusMatrix("narrow", np.random.default_rng(1).normal(size=(4, 1)), names)
    joined = side_by_side([wide, narrow], names)
    assert joined.matrix.shape == (4, 10)
    assert np.isclose((joined.matrix[:, :9] ** 2).sum(), (joined.matrix[:, 9:] ** 2).sum())


def test_the_design_is_checked_at_construction():
    anchor = StimulusMatrix("anchor", np.zeros((1, 1)), ("a",))
    with pytest.raises(ValueError, match=r"^ci: Input should be less than 1 \(got 1.5\)$"):
        FewShotDesign(("a",), (1,), anchor, {}, features=2, n_iter=1, seed=0, ci=1.5)
