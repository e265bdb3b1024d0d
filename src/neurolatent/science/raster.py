"""How matplotlib puts an image on a figure's pixels, for the fast engine (:mod:`.render`) to draw
nilearn's ortho pictures without matplotlib: where nilearn's OrthoSlicer and matplotlib's equal
aspect place each view's axes, which pixels the image fills (matplotlib 3.8 and 3.11, Agg), which
voxel each pixel shows (Agg's nearest-neighbour fixed point) and its colour level. Each follows
the library's own arithmetic, measured against nilearn 0.10.4 and 0.14.1
(``tests/data/render/``): a voxel edge on a half pixel goes the way that arithmetic sends it.
"""

from __future__ import annotations

import numpy as np


def axes_boxes(limits: list, views: list, figure: tuple[float, float]) -> list[tuple[float, float, float, float]]:
    """Each view's axes in figure pixels, (left, bottom, right, top) from the bottom-left corner, as
    nilearn's OrthoSlicer locator and matplotlib's ``apply_aspect`` place them, operation for operation.

    limits : per volume axis its drawn (min, max), mm; views : per view its (horizontal, vertical)
    volume axes; figure : its (width, height), pixels. The locator gives each view a share of the
    figure's width proportional to its horizontal extent (the shares summed in the order the views
    were made, the left edges accumulated), equal aspect shrinks the box to the data's ratio around
    its centre (anchor C).
    The last bit matters: an axes 165.00000000000003 pixels high is drawn 166 pixels high (see
    :func:`pixel_grid`), so the arithmetic is matplotlib's, not a simpler equivalent.
    """
    fig_w, fig_h = figure
    fig_aspect = fig_h / fig_w
    spans = [limits[h][1] - limits[h][0] for h, _ in views]
    total = float(sum([0, *spans]))  # the locator's dict starts with a dummy axes of width 0
    shares = [span / total * (1 - 0) for span in spans]
    boxes, left = [], 0.0
    for (h, v), share in zip(views, shares):
        x0, y0, x1, y1 = left, 0.0, left + share, 1.0
        left += share
        w, hh = x1 - x0, y1 - y0
        box_aspect = 1.0 * (max(abs(limits[v][1] - limits[v][0]), 1e-30) / max(abs(limits[h][1] - limits[h][0]), 1e-30))
        height = w * box_aspect / fig_aspect  # Bbox.shrunk_to_aspect
        width = w if height <= hh else hh * fig_aspect / box_aspect
        height = height if height <= hh else hh
        p0, p1 = np.array([x0, y0]), np.array([x0, y0]) + (width, height)
        inner_w, inner_h = p1 - p0
        shift = np.array([(x0 + 0.5 * (w - inner_w)) - p0[0], (y0 + 0.5 * (hh - inner_h)) - p0[1]])  # anchored("C")
        (l, b), (r, t) = (p0 + shift) * (fig_w, fig_h), (p1 + shift) * (fig_w, fig_h)
        boxes.append((float(l), float(b), float(r), float(t)))
    return boxes


def pixel_grid(near: float, far: float, other_length: float, raster: str, extent: int,
                vertical: bool = False) -> tuple[int, np.ndarray, np.ndarray]:
    """Where matplotlib draws an axes-filling image along one figure axis (Agg, nearest neighbour).

    near, far : the axes' edges along the axis in figure pixels, from the left, or, ``vertical``,
    from the bottom (the figure's rows are then counted from the top); other_length : its extent
    along the other axis; extent : the figure's pixels along the axis. Returns the first figure
    pixel (column, or row from the top) drawn, the position of each of the image buffer's pixel
    centres (and of one past the last, for 3.8) in the axes as a fraction of its span from its left
    (top) edge, and which buffer pixels are drawn.

    - matplotlib 3.11 rounds the axes' edges to whole pixels and samples at the pixel centres.
    - matplotlib 3.8 renders the image into ceil(length) pixels, stretching it slightly to fill
      them (``_make_image``'s "round up the output width"); Agg's ``draw_image`` puts that buffer's
      left edge on the axes' left edge and its bottom edge on the axes' bottom, rounded to the
      nearest pixel; drawing is clipped to the axes' edges rounded to pixels, both edges' pixels
      included (Agg's clip box is inclusive). (Measured against nilearn 0.10.4, matplotlib 3.8.0.)
    """
    length = far - near
    start = extent - far if vertical else near  # from the top or the left
    if raster == "matplotlib-3.11":
        first, last = int(np.floor(start + 0.5)), int(np.floor(start + length + 0.5))
        pixels = np.arange(first, last)
        return first, (pixels + 0.5 - start) / length, np.ones(len(pixels), bool)
    stretched = length % 1.0 != 0.0 or other_length % 1.0 != 0.0
    size = int(np.ceil(length)) if stretched else int(length)
    first = (extent - size) - near if vertical else near  # the buffer's first row from the top, or column
    pixels = int(np.floor(first + 0.5)) + np.arange(size)
    low_edge, high_edge = (extent - far, extent - near) if vertical else (near, far)
    keep = ((pixels >= max(int(np.floor(low_edge + 0.5)), 0))
            & (pixels <= min(int(np.floor(high_edge + 0.5)), extent - 1)))
    return int(pixels[keep][0]), (np.arange(size + 1) + 0.5) / size, keep


def agg_nearest(source: np.ndarray, along_span: bool) -> np.ndarray:
    """The image pixel Agg's nearest-neighbour filter (matplotlib 3.8) picks for each output pixel.

    source : the exact image coordinate (pixels, continuous) of each output pixel's centre, and,
    ``along_span``, of the centre one past the last. Agg rounds coordinates to 1/256 pixel (iround)
    and, along a scanline, steps from the first to the one-past-last with an integer line
    interpolator (agg::dda2_line_interpolator) instead of transforming each pixel; across
    scanlines each row is transformed itself. Then the pixel is the coordinate >> 8. A voxel edge
    that falls on a half pixel goes the way this arithmetic sends it (one pixel either side: r 0.97
    against 0.99 on a view with voxels 2.5 pixels wide).
    """
    fixed = np.where(source < 0, source * 256 - 0.5, source * 256 + 0.5).astype(np.int64)  # agg::iround
    if not along_span:
        return fixed >> 8
    count, start, delta = len(source) - 1, int(fixed[0]), int(fixed[-1] - fixed[0])
    step, rem = int(np.fix(delta / count)), int(np.fmod(delta, count))  # C division
    mod = rem
    if mod <= 0:
        mod, rem, step = mod + count, rem + count, step - 1
    mod -= count
    out, y = np.empty(count, np.int64), start
    for k in range(count):
        out[k] = y
        mod += rem
        y += step
        if mod > 0:
            mod -= count
            y += 1
    return out >> 8


def colour_levels(cut: np.ndarray, drawn: np.ndarray, low: float, high: float, raster: str) -> np.ndarray:
    """Colour levels (0-255) of a slice's values on the scale [low, high], as matplotlib maps them.

    matplotlib 3.8 first rescales a view's values into [0.1, 0.9] by their drawn min and max and
    back, in float32 (``_make_image``), and normalises in float32: a value on a level's edge (a
    constant box of 500 on [-1000, 1000]) can fall one level lower than exact arithmetic puts it.
    """
    if raster != "matplotlib-3.8" or not drawn.any():
        scale = 256.0 / (high - low) if high > low else 0.0
        return np.clip(((cut - low) * scale).astype(np.int16), 0, 255)
    f32 = np.float32
    a_min, a_max = f32(cut[drawn].min()), f32(cut[drawn].max())
    values, ends = cut.astype(f32), np.array([low, high], f32)
    divisor = f32((float(a_max) - float(a_min)) / 0.8)
    for array in (values, ends):
        array -= a_min
        if a_min != a_max:
            array /= divisor
        array += f32(0.1)
        array -= f32(0.1)
        if a_min != a_max:
            array *= divisor
        array += a_min
    span = ends[1] - ends[0]
    scaled = ((values - ends[0]) / span if span > 0 else np.zeros_like(values)) * f32(256)
    return np.clip(np.where(scaled == 256, 255, np.floor(scaled)), 0, 255).astype(np.int16)
