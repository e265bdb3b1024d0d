"""The run's offline page, ``reports/run/index.html``: the headline, the loss curves and the RSA and
identification charts drawn here as SVG (Vega-Lite specs rendered by vl-convert, no script and no
CDN), and every figure of ``plots/`` linked by relative path at the page's width. Nothing on it is
fetched from the network; it opens from a clone of the project in any browser."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
from PIL import Image

from neurolatent.pipeline.outputs.figures.common import display_name

#: the MLflow UI's runs table of the project's store (docs/getting-started.md, "The MLflow UI")
MLFLOW_RUNS = "http://127.0.0.1:5000/#/experiments/1?workflowType=machine_learning"
#: the headline's names, as metrics/summary.json has them, with what each is
HEADLINE = {"samples.r": "RSA r, fMRI samples vs the best image model", "samples.lo": "its 95% CI, low",
            "samples.hi": "its 95% CI, high", "samples.p": "its permutation p", "samples.nc": "lower noise ceiling",
            "ae.r": "RSA r, fMRI AE latents vs the best image model", "ae.lo": "its 95% CI, low",
            "ae.hi": "its 95% CI, high", "ae.p": "its permutation p", "ae.nc": "lower noise ceiling",
            "2way": "best 2-way identification of held-out images", "top1": "its top-1 accuracy",
            "enc.r": "best encoding model, median voxel r", "fmri_ae.loss": "fMRI AE best validation loss",
            "image_ae.loss": "image AE best validation loss"}


def _svg(spec: dict) -> str:
    """A Vega-Lite spec drawn as inline SVG (vl-convert: Vega's own renderer, run locally)."""
    import vl_convert

    return vl_convert.vegalite_to_svg(spec)


def _loss_chart(table: pd.DataFrame, title: str) -> dict:
    long = table.melt(id_vars="epoch", var_name="split", value_name="loss")
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title, "width": 320, "height": 200,
            "data": {"values": long.to_dict(orient="records")}, "mark": {"type": "line", "point": True},
            "encoding": {"x": {"field": "epoch", "type": "quantitative"},
                         "y": {"field": "loss", "type": "quantitative", "scale": {"zero": False}},
                         "color": {"field": "split", "type": "nominal"}}}


def _rsa_chart(group: pd.DataFrame) -> dict:
    rows = [{"fmri": row.fmri, "model": display_name(row.model), "r": row.r, "low": row.ci_low, "high": row.ci_high,
             # the planted truth and the category model are references, not candidates: drawn apart
             "kind": "reference (planted truth, category)" if row.model.startswith("planted") or row.model == "category"
             else "image model"} for row in group.itertuples()]
    bars = {"mark": "bar", "encoding": {"x": {"field": "model", "type": "nominal", "sort": None, "title": None,
                                              "axis": {"labelLimit": 300}},
                                        "y": {"field": "r", "type": "quantitative", "title": "RSA r (95% CI)"},
                                        "color": {"field": "kind", "type": "nominal", "title": None,
                                                  "scale": {"range": ["#4c78a8", "#bbbbbb"]},
                                                  "legend": {"labelLimit": 400, "orient": "bottom"}}}}
    ci = {"mark": {"type": "rule", "color": "black"},
          "encoding": {"x": {"field": "model", "type": "nominal", "sort": None},
                       "y": {"field": "low", "type": "quantitative"}, "y2": {"field": "high"}}}
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": rows},
            "facet": {"column": {"field": "fmri", "type": "nominal", "title": "fMRI representation"}},
            "spec": {"width": 220, "height": 200, "layer": [bars, ci]}, "title": "RSA per model (union of ROIs)"}


def _identification_chart(table: pd.DataFrame) -> dict:
    rows = [{"comparison": f"{row.fmri} -> {display_name(row.model)}, {row.method}", "two_way": row.two_way,
             "chance_high": row.chance_high} for row in table.itertuples()]
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": rows},
            "title": ["2-way identification of held-out images", "(chance 0.5; tick: the null's 97.5th percentile)"],
            "padding": {"left": 60, "top": 5, "right": 5, "bottom": 5},
            "width": 420, "height": {"step": 14},
            "layer": [{"mark": "bar", "encoding": {"y": {"field": "comparison", "type": "nominal", "sort": None,
                                                         "title": None, "axis": {"labelLimit": 400}},
                                                   "x": {"field": "two_way", "type": "quantitative",
                                                         "scale": {"domain": [0, 1]}, "title": "2-way accuracy"}}},
                      {"mark": {"type": "tick", "color": "black"},
                       "encoding": {"y": {"field": "comparison", "type": "nominal", "sort": None},
                                    "x": {"field": "chance_high", "type": "quantitative"}}}]}


def write_page(path: Path, summary: Path, losses: dict[str, Path], group: Path, identification: Path,
               figure_dirs: dict[str, Path]) -> None:
    """Write the page to ``path``: the headline from ``summary`` (metrics/summary.json), a loss
    chart per {stage: its loss CSV} of ``losses``, the RSA chart from ``group`` (rsa's group.csv),
    the identification chart from ``identification`` (stitch's identification.csv), and every PNG
    of each {heading: folder} of ``figure_dirs``, linked relative to ``path``'s folder. Parts whose
    files are absent are left out."""
    import os

    path = Path(path)
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'><title>neurolatent: this run</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "img{max-width:100%;height:auto;border:1px solid #ddd;margin:0.5em 0}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
             "figure{margin:1em 0}figcaption{color:#555;font-size:90%}.charts{display:flex;flex-wrap:wrap;gap:1em}"
             # a figure of many panels keeps a readable height and scrolls sideways
             ".wide{overflow-x:auto}.wide img{max-width:none;height:420px}"
             "</style></head><body>",
             "<h1>neurolatent: this run</h1>",
             "<p>Made by <code>dvc repro</code> (stage <code>page</code>) from <code>metrics/</code> and "
             "<code>plots/</code>; nothing here comes from the network. Every run's params, metrics and figures: "
             f"<code>mlflow ui</code>, then <a href='{MLFLOW_RUNS}'>{html.escape(MLFLOW_RUNS)}</a>.</p>"]
    if Path(summary).is_file():
        values = json.loads(Path(summary).read_text())
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(HEADLINE.get(k, ''))}</td>"
                       f"<td>{v:.4g}</td></tr>" for k, v in values.items() if isinstance(v, (int, float)))
        parts.append(f"<h2>Headline</h2><table><tr><th>metric</th><th>what</th><th>value</th></tr>{rows}</table>")
    charts = [_svg(_loss_chart(pd.read_csv(csv), f"{stage}: loss per epoch"))
              for stage, csv in losses.items() if Path(csv).is_file()]
    if charts:
        parts.append("<h2>Training</h2><div class='charts'>" + "".join(charts) + "</div>")
    if Path(group).is_file():
        parts.append("<h2>RSA</h2>" + _svg(_rsa_chart(pd.read_csv(group))))
    if Path(identification).is_file():
        parts.append("<h2>Identification</h2>" + _svg(_identification_chart(pd.read_csv(identification))))
    for heading, folder in figure_dirs.items():
        pictures = sorted(Path(folder).glob("*.png"))
        if pictures:
            parts.append(f"<h2>{html.escape(heading)}: figures</h2>")
        for picture in pictures:
            link = Path(os.path.relpath(picture.absolute(), path.parent.absolute())).as_posix()
            with Image.open(picture) as image:
                wide = image.width > 2.5 * image.height
            parts.append(f"<figure{' class=wide' if wide else ''}><a href='{link}'><img src='{link}' alt='{picture.stem}'></a>"
                         f"<figcaption>{html.escape(picture.name)} (an SVG beside it)</figcaption></figure>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n")
