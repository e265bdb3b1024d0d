"""What every figure shares: the names models get, and files written the same every time."""

from __future__ import annotations

import pytest

from neurolatent.pipeline.outputs.figures.common import display_name, plt, save_figure


@pytest.mark.parametrize(("model", "shown"), [
    ("untrained_resources_vit-tiny", "vit-tiny (untrained)"), ("image_ae", "image AE"),
    ("planted_object", "planted: object"), ("planted", "planted truth (all families)"),
    ("vit_layer3", "vit, layer 3"), ("untrained_resources_vit-tiny_layer12", "vit-tiny (untrained), layer 12"),
    ("pixels", "pixels")])
def test_display_name(model, shown):
    assert display_name(model) == shown


def test_save_figure_writes_png_and_svg_with_the_same_bytes_every_time(tmp_path):
    """No date, no random SVG ids: a figure drawn twice is the same file twice (DVC outputs)."""
    def draw(folder):
        folder.mkdir()
        figure, ax = plt.subplots()
        ax.plot([0, 1], [1, 0], label="a line")
        ax.set_title("a title")
        save_figure(figure, folder / "figure.png")
        return (folder / "figure.png").read_bytes(), (folder / "figure.svg").read_bytes()

    first, second = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert first == second
    assert first[0].startswith(b"\x89PNG") and b"a title" in first[1]  # text stays text in the SVG
    assert not plt.get_fignums()  # closed
