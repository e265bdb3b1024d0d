"""An autoencoder's originals over its reconstructions, for each kind of input it is given."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from neurolatent.pipeline.outputs.figures.autoencoder import autoencoder_reconstructions


@pytest.mark.parametrize("shape", [(3, 3, 8, 8), (3, 1, 6, 7, 5), (3, 20)], ids=["pictures", "volumes", "vectors"])
def test_reconstructions_draw_a_column_per_sample(tmp_path, shape):
    originals = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    autoencoder_reconstructions(originals, originals * 0.5, tmp_path / "ae.png", "an AE")
    svg = (tmp_path / "ae.svg").read_text()
    assert all(f"sample {k}" in svg for k in (1, 2, 3)) and "original" in svg and "reconstruction" in svg
    assert Image.open(tmp_path / "ae.png").size[0] > Image.open(tmp_path / "ae.png").size[1]
