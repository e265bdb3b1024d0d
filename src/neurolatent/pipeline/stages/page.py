"""Stage ``page``: the run's offline page, ``reports/run/index.html`` (the headline, the loss,
RSA and identification charts drawn locally as SVG, every figure of plots/ at the page's width;
nothing fetched from the network). See :mod:`neurolatent.pipeline.outputs.page`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from neurolatent.io.files import atomic_dir
from neurolatent.pipeline.outputs.page import write_page


def closing_line(metrics: dict) -> str:
    """Where the page is."""
    return f"page: {metrics['page']} (open it in a browser; it needs no network)"


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``paths``; returns where the page is."""
    with atomic_dir(Path(paths.out)) as out:
        write_page(out / "index.html", paths.summary, {"fmri_ae": paths.fmri_ae_loss, "image_ae": paths.image_ae_loss},
                   Path(paths.rsa_plots) / "group.csv", Path(paths.stitch_plots) / "identification.csv",
                   {"RSA": paths.rsa_plots, "Translating between the spaces": paths.stitch_plots,
                    "Encoding, what each model explains": paths.encode_plots})
    return {"page": str(Path(paths.out) / "index.html")}
