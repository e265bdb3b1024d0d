"""matplotlib's arithmetic for the fast engine, against values matplotlib 3.8.0 and nilearn 0.10.4
computed themselves (in the study's environment, tests/data/render/requirements-study.txt); the
whole pictures are compared in test_render.py."""

import numpy as np

from neurolatent.science.raster import agg_nearest, axes_boxes, colour_levels, pixel_grid

#: signed noise over a 42 x 49 x 27 grid at 2 x 2 x 2.5 mm (tests/data/render/drawn/019_noise_axis):
#: nilearn 0.10.4's axes for views y, x, z as matplotlib 3.8.0 placed them (Axes.bbox.bounds)
LIMITS = [(-41.0, 41.0), (-48.0, 48.0), (-32.5, 32.5)]
NILEARN_0104_AXES = [(0.0, 92.49999999999999, 208.15384615384616, 165.0),
                     (208.15384615384616, 92.49999999999999, 243.6923076923077, 165.0),
                     (451.84615384615387, 53.15384615384615, 208.15384615384613, 243.6923076923077)]


def test_axes_are_placed_as_matplotlib_places_them_to_the_last_bit():
    boxes = axes_boxes(LIMITS, [(0, 2), (1, 2), (0, 1)], (660, 350))
    assert [(left, bottom, right - left, top - bottom) for left, bottom, right, top in boxes] == NILEARN_0104_AXES
    # both views 165 px high from row 93, as nilearn drew them (the fast engine's earlier, simpler
    # arithmetic drew the second 166 rows high from row 92: r 0.94 in that view)
    for left, bottom, right, top in boxes[:2]:
        first_row, _, drawn = pixel_grid(bottom, top, right - left, "matplotlib-3.8", 350, vertical=True)
        assert (first_row, int(drawn.sum())) == (93, 165)


def test_agg_steps_along_a_span_in_fixed_point():
    """A view with voxels 2.5 pixels wide: the exact coordinate puts every other edge on a half
    pixel; Agg's 1/256 fixed point and line interpolator decide them, the same way each time."""
    centres = (np.arange(11) + 0.5) / 2.5  # image coordinate of 10 pixel centres and one past
    exact = np.floor(centres[:-1]).astype(int)
    agg = agg_nearest(centres, along_span=True)
    assert len(agg) == 10 and np.abs(agg - exact).max() <= 1
    np.testing.assert_array_equal(agg, agg_nearest(centres[:-1], along_span=False))
    # a coordinate 1/1000 pixel below an edge is rounded onto it: 1/256 is Agg's resolution
    assert agg_nearest(np.array([2.999]), along_span=False)[0] == 3 and int(np.floor(2.999)) == 2


def test_colour_levels_are_matplotlib_38s():
    """Levels matplotlib 3.8.0's imshow gave these values on [-1000, 1000] (256 levels): 500 falls
    on a level's edge, 192 exactly, and matplotlib 3.8's float32 rescaling puts it at 191."""
    values = np.array([[500.0, -1000.0, -1000.0, 150.0, -300.0, 150.0]], np.float32)
    drawn = np.abs(values) > 100
    np.testing.assert_array_equal(colour_levels(values, drawn, -1000.0, 1000.0, "matplotlib-3.8"),
                                  [[191, 0, 0, 147, 89, 147]])
    assert colour_levels(values, drawn, -1000.0, 1000.0, "matplotlib-3.11")[0, 0] == 192
    np.testing.assert_array_equal(colour_levels(values, drawn, -1200.0, 1200.0, "matplotlib-3.8"),
                                  [[181, 21, 21, 144, 96, 144]])
