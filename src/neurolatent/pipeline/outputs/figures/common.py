"""What every figure of the stages shares: the Agg backend, SVG written the same every time, the
300 dpi PNG beside each SVG, and the names figures show for models."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


#: SVG ids from a fixed salt (not a random one): the same figure gives the same file
matplotlib.rcParams["svg.hashsalt"] = "neurolatent"
#: text stays text in SVG (editable in a paper's figure), not glyph outlines
matplotlib.rcParams["svg.fonttype"] = "none"
DPI = 300


def display_name(model: str) -> str:
    """A model's name as figures show it: ``untrained_resources_vit-tiny`` -> ``vit-tiny
    (untrained)``, ``image_ae`` -> ``image AE``, ``planted_object`` -> ``planted: object``,
    ``<model>_layer<k>`` -> ``<model>, layer k``; other names as they are."""
    import re

    layer = re.fullmatch(r"(.+)_layer(\d+)", model)
    if layer:
        return f"{display_name(layer.group(1))}, layer {layer.group(2)}"
    if model.startswith("untrained_"):
        return f"{model.removeprefix('untrained_').removeprefix('resources_')} (untrained)"
    if model.startswith("planted_"):
        return f"planted: {model.removeprefix('planted_')}"
    return {"image_ae": "image AE", "planted": "planted truth (all families)", "noise": "noise (control)"}.get(model, model)


def save_figure(figure, path: Path) -> None:
    """Write ``figure`` as a 300 dpi PNG at ``path`` and as SVG beside it (``.svg``: vector, text
    editable, for papers), without dates in either, and close it."""
    path = Path(path)
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
    figure.savefig(path.with_suffix(".svg"), metadata={"Date": None, "Creator": None})
    plt.close(figure)


