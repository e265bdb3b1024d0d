"""Figures drawn from plain tables (figures imports nothing from the package)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from neurolatent.pipeline.outputs.figures import rsa as rsa_figures
from neurolatent.pipeline.outputs.figures import stitch as stitch_figures


def _layer_table() -> pd.DataFrame:
    """ROI rows of two networks' layers against two fMRI representations (the samples' union and two
    ROIs), as the rsa stage merges them with the manifest's layers (the deeper one with a subset of
    its 13 hidden states)."""
    rng = np.random.default_rng(0)
    rows = []
    for kind, regions in (("ae", ["union"]), ("samples", ["union", "EarlyVis", "LOC"])):
        for roi in regions:
            for network, count, layers in (("google/vit-base-patch16-224-in21k", 13, ["last", 0, 3, 6, 9, 12]),
                                           ("untrained:resources/vit-tiny", 3, [0, 1, 2, "last"])):
                for layer in layers:
                    r = float(rng.uniform(0.0, 0.3))
                    rows.append({"roi": roi, "fmri": kind, "model": f"{network}@layer{layer}", "network": network,
                                 "layer": layer, "hidden_states": count, "r": r, "ci_low": r - 0.05, "ci_high": r + 0.04})
    return pd.DataFrame(rows).assign(compare="spearman", ci=0.95)


def test_rsa_layers_writes_a_300_dpi_png(tmp_path):
    path = tmp_path / "layers.png"
    rsa_figures.rsa_layers(_layer_table(), path)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert round(picture.info["dpi"][0]) == 300 and picture.size[0] > 2000  # four panels at 300 dpi


def test_the_roi_heatmap_marks_corrected_significance_and_the_bars_draw(tmp_path):
    rng = np.random.default_rng(2)
    rows = [{"roi": roi, "fmri": kind, "model": model, "r": float(rng.uniform(-0.1, 0.8)),
             "p_fwe": float(rng.uniform(0, 0.1)), "ceiling_low": 0.8 if kind == "samples" else float("nan")}
            for kind, regions in (("ae", ["union"]), ("samples", ["union", "EarlyVis", "LOC", "PPA"]))
            for roi in regions for model in ("pixels", "planted_lowlevel", "category")]
    rsa_figures.roi_heatmap(pd.DataFrame(rows), tmp_path / "rois.png")
    stitch_figures.roi_bars(pd.DataFrame(rows).rename(columns={"r": "two_way"}), "two_way", "2-way", tmp_path / "bars.png",
                     chance=0.5)
    for name in ("rois", "bars"):
        with Image.open(tmp_path / f"{name}.png") as picture:
            assert picture.format == "PNG" and round(picture.info["dpi"][0]) == 300
        assert (tmp_path / f"{name}.svg").read_text().count("<svg") == 1


def test_rsa_layers_one_panel_without_optional_columns_or_last(tmp_path):
    """One fMRI representation, no compare or ci column, no last entries, and a network with only
    last (no curve: left out)."""
    table = _layer_table().drop(columns=["compare", "ci"])
    table = table[(table["fmri"] == "samples") & (table["layer"].astype(str) != "last")]
    only_last = table.iloc[:1].assign(network="other", layer="last", model="other")
    rsa_figures.rsa_layers(pd.concat([table, only_last], ignore_index=True), tmp_path / "layers.png")
    with Image.open(tmp_path / "layers.png") as picture:
        assert picture.format == "PNG"


def _rdms():
    from neurolatent.science.rsa.rdm import RDM

    rng = np.random.default_rng(1)
    names = tuple(f"img{i:02d}.jpg" for i in range(12))
    category = {name: ("coco", "imagenet", "scene")[i % 3] for i, name in enumerate(names)}
    rdms = []
    for label in ("ae/CSI1", "pixels"):
        upper = rng.uniform(0.2, 1.8, size=12 * 11 // 2)
        rdms.append(RDM(upper, names, "correlation", label, {"subject": "CSI1"}))
    return rdms, category


def test_every_figure_is_a_300_dpi_png_with_an_svg_and_the_same_bytes_twice(tmp_path):
    rdms, category = _rdms()
    for attempt in ("first", "second"):
        (tmp_path / attempt).mkdir()
        drawn = [rsa_figures.drawn_rdm(item, category) for item in rdms]
        rsa_figures.rdm_heatmaps(drawn, category, tmp_path / attempt / "rdms.png")
        rsa_figures.mds_scatter(drawn, category, tmp_path / attempt / "mds.png")
    for name in ("rdms", "mds"):
        png, svg = tmp_path / "first" / f"{name}.png", tmp_path / "first" / f"{name}.svg"
        assert round(Image.open(png).info["dpi"][0]) == 300
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
        for suffix in ("png", "svg"):  # plots/ is in git: a rerun must not change a byte
            assert (tmp_path / "first" / f"{name}.{suffix}").read_bytes() == (tmp_path / "second" / f"{name}.{suffix}").read_bytes()
    # the RDM figure says what its colours mean; the MDS its axes
    assert "dissimilarity percentile (%)" in (tmp_path / "first" / "rdms.svg").read_text()
    assert "MDS dimension 1" in (tmp_path / "first" / "mds.svg").read_text()


def test_rsa_bars_name_the_comparison_and_the_ci_level(tmp_path):
    group = pd.DataFrame({"fmri": ["ae", "ae"], "model": ["pixels", "planted"], "r": [0.1, 0.6], "p": [0.3, 1e-4],
                          "ci_low": [0.0, 0.5], "ci_high": [0.2, 0.7], "noise_ceiling_lower": [0.7, 0.7],
                          "noise_ceiling_upper": [0.8, 0.8]})
    rsa_figures.rsa_bars(group, tmp_path / "bars.png", "kendall_tau_a", 0.9)
    svg = (tmp_path / "bars.svg").read_text()
    assert "Kendall tau-a r of RDMs" in svg and "90% bootstrap CI" in svg


def test_large_rdms_are_drawn_from_every_kth_image_and_say_so(tmp_path, monkeypatch):
    """Over more images than a panel can show, the heatmap and the MDS draw every k-th image (12
    images at most 5 a panel: every 3rd, 4 images) and their labels say how many."""
    rdms, category = _rdms()
    monkeypatch.setattr(rsa_figures, "HEATMAP_IMAGES", 5)
    monkeypatch.setattr(rsa_figures, "MDS_IMAGES", 5)
    shown = []
    monkeypatch.setattr(rsa_figures, "classical_mds",
                        lambda square: shown.append(len(square)) or np.zeros((len(square), 2)))
    drawn = [rsa_figures.drawn_rdm(item, category) for item in rdms]
    rsa_figures.rdm_heatmaps(drawn, category, tmp_path / "rdms.png")
    rsa_figures.mds_scatter(drawn, category, tmp_path / "mds.png")
    assert "12 images by category (1 in 3 drawn)" in (tmp_path / "rdms.svg").read_text()
    assert "ae/CSI1 (4 of 12)" in (tmp_path / "mds.svg").read_text() and shown == [4, 4]


def test_what_the_figures_draw_is_the_square_of_the_subset_they_drew_from(monkeypatch):
    """drawn_rdm keeps only the images a figure draws, cut from the RDM's cells without its square:
    the same values as the square of the subject's subset at the drawn rows (the figures' bytes
    depend on it), for a model RDM over more images than the subject saw, in another order."""
    rdms, category = _rdms()
    monkeypatch.setattr(rsa_figures, "HEATMAP_IMAGES", 4)
    monkeypatch.setattr(rsa_figures, "MDS_IMAGES", 3)
    model = rdms[1]
    subject_images = model.stimuli[10:1:-1]  # 9 of the 12, reversed
    drawn = rsa_figures.drawn_rdm(model, category, subject_images)
    subset = model.subset(subject_images)
    order = sorted(range(9), key=lambda i: (category[subject_images[i]], subject_images[i]))[::3]
    assert drawn.n == 9 and drawn.heatmap_step == 3 and drawn.subject == "CSI1"
    assert drawn.heatmap_stimuli == tuple(subject_images[i] for i in order)
    np.testing.assert_array_equal(drawn.heatmap, subset.square()[np.ix_(order, order)])
    assert drawn.mds_stimuli == tuple(subject_images[i] for i in (0, 3, 6))
    np.testing.assert_array_equal(drawn.mds, subset.square()[np.ix_([0, 3, 6], [0, 3, 6])])
