"""Stimulus images read as RGB: colours kept in R, G, B order, 16-bit pictures scaled (not clipped
white), resizing, a broken file named, and the stimulus table's pictures stacked in its order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neurolatent.errors import NeurolatentError
from neurolatent.io.images import load_stimuli, read_rgb


def test_rgb_order_and_resize(tmp_path):
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0] = 200
    Image.fromarray(red).save(tmp_path / "red.png")
    assert read_rgb(tmp_path / "red.png").tolist() == red.tolist()
    small = read_rgb(tmp_path / "red.png", size=2)
    assert small.shape == (2, 2, 3) and (small == [200, 0, 0]).all()


def test_sixteen_bit_pictures_are_scaled_to_eight_bits(tmp_path):
    Image.fromarray(np.full((3, 3), 32768, np.uint16)).save(tmp_path / "deep.png")
    assert (read_rgb(tmp_path / "deep.png") == 128).all()  # 32768 * 255 / 65535 = 127.5, rounded


def test_a_file_that_is_no_image_is_named(tmp_path):
    (tmp_path / "not.png").write_text("text")
    with pytest.raises(NeurolatentError, match="not.png: not a readable image"):
        read_rgb(tmp_path / "not.png")


def test_load_stimuli_stacks_channels_first_in_table_order(tmp_path):
    for name, value in (("a.png", 10), ("b.png", 250)):
        Image.fromarray(np.full((5, 5, 3), value, np.uint8)).save(tmp_path / name)
    pd.DataFrame({"image_path": ["b.png", "a.png"]}).to_parquet(tmp_path / "stimuli.parquet")
    table, pictures = load_stimuli(tmp_path / "stimuli.parquet", tmp_path, 4)
    assert pictures.shape == (2, 3, 4, 4) and pictures.dtype == np.uint8
    assert pictures[0].max() == 250 and pictures[1].max() == 10
    with pytest.raises(ValueError, match=r"^size: Input should be greater than or equal to 1 \(got 0\)$"):
        load_stimuli(tmp_path / "stimuli.parquet", tmp_path, 0)
