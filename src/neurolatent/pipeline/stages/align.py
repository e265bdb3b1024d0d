"""Stage ``align``: one shared space for every subject, and a new subject read from few of its images.

Test images: a seeded ``align.test_fraction`` of the images every subject saw (the same for all).
Each subject in turn is held out; every method of ``align.methods`` is fitted on the others, the
held-out subject is mapped in from k of its training images (each k of ``align.k``, and all of
them) and its test images decoded into every image model's latents (and the planted features on
the twin) by a ridge decoder trained on the others in the shared space, beside ``scratch`` (ridge
on the subject's own k images); and identified between subjects (target ``subjects``). See
:mod:`neurolatent.science.fewshot`.

Outputs: ``plots/align/fewshot.csv`` (subject, method, k, target, two_way, ci_low, ci_high, top1),
``fewshot.png`` (accuracy against k per method, CI bands, chance), on the twin ``planted.csv``
(method, component, canonical_r: the shared space over the images against the planted features);
``data/align`` (``align.method`` fitted on every subject: each subject's responses to its images in
the shared space, ``shared.npy`` with ``index.parquet``, rsa's and stitch's ``align``
representation); ``metrics/align.json``; MLflow gets the metrics, the table and the figure.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io.files import atomic_dir, save_npy, write_metrics
from neurolatent.io.representations import (fmri_latents, fmri_samples, fmri_trial_samples, image_models,
                                            planted_features)
from neurolatent.pipeline import tracking
from neurolatent.pipeline.outputs.curves import fewshot_curves
from neurolatent.pipeline.progress import progress
from neurolatent.science.alignment import canonical_correlations
from neurolatent.science.fewshot import (SCRATCH, FewShotDesign, check_features, check_ks, common_test_images,
                                         fit_alignment, images_to_reach, leave_one_out, planted_space, side_by_side)
from neurolatent.science.stats import named_rng

COLUMNS = ["subject", "method", "k", "target", "two_way", "ci_low", "ci_high", "top1"]


def closing_line(metrics: dict) -> str:
    """The headline: per method, how few of a new subject's images reach 90 % of its own all-image
    accuracy (median over the image models of the per-model medians over subjects); and the best
    between-subject identification at the smallest k."""
    per_method: dict[str, list[float]] = {}
    for key, value in metrics.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[3] == "images_to_90" and parts[2] != "planted":
            per_method.setdefault(parts[1], []).append(np.inf if value is None or value != value else value)
    parts = [f"{method} {'never' if np.isinf(k) else f'{k:.0f}'}" for method, k in
             ((method, float(np.median(values))) for method, values in per_method.items())]
    return "align: images to 90 % of the subject's own all-image accuracy (median): " + ", ".join(parts)


def _checked(key: str, check, *args):
    """``check(*args)``; its ValueError as the one line naming ``align.<key>``."""
    try:
        return check(*args)
    except ValueError as exc:
        raise NeurolatentError(f"params.yaml: align.{key}: {exc}") from None


def _design(settings: SimpleNamespace, responses: dict, models: dict, planted: dict) -> FewShotDesign:
    test = _checked("test_fraction", common_test_images, responses, settings.test_fraction, settings.min_test,
                    settings.seed)
    _checked("k", check_ks, settings.k, responses, test)
    _checked("features", check_features, settings.features, responses, test)
    names = tuple(sorted(set().union(*(r.stimuli for r in responses.values()))))
    unknown = [name for name in settings.anchor or () if name not in models]
    if unknown:
        raise NeurolatentError(f"params.yaml: align.anchor: no image model {unknown[0]!r} ({', '.join(models)})")
    anchor = side_by_side([models[name] for name in settings.anchor or models], names)
    targets = models | ({"planted": planted["planted"]} if planted else {})
    return FewShotDesign(test, tuple(sorted(set(settings.k))), anchor, targets, settings.features, settings.n_iter,
                         settings.seed, settings.bootstrap, settings.ci)


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    settings = params.align
    if settings.fmri == "samples":
        responses = fmri_samples(fmri_trial_samples(paths.samples, paths.trials, params.preprocess.lag_s,
                                                    params.preprocess.anchor, params.preprocess.rounding))
    else:
        responses = fmri_latents(paths.fmri, paths.fmri_index)
    if len(responses) < 2:
        raise NeurolatentError(f"align: {len(responses)} subject; leaving one out needs at least 2 (data.subjects)")
    models = image_models(paths.images, pd.read_parquet(paths.stimuli))
    planted = planted_features(paths.truth)
    design = _design(settings, responses, models, planted)

    rows = []
    methods = [*settings.methods, SCRATCH]
    bar = progress(total=len(responses) * len(methods), desc="align", unit="fit")
    for subject in responses:
        for method in methods:
            rows += leave_one_out(method, responses, subject, design, named_rng(settings.seed, method, subject))
            bar.update()
    bar.close()
    table = pd.DataFrame(rows, columns=COLUMNS)
    planted_rows = []
    if planted:
        for method in settings.methods:
            space = planted_space(method, responses, design)
            r = canonical_correlations(space.matrix, planted["planted"].rows(space.stimuli))
            planted_rows += [{"method": method, "component": i + 1, "canonical_r": float(v)} for i, v in enumerate(r)]
    metrics = _metrics(table, pd.DataFrame(planted_rows, columns=["method", "component", "canonical_r"]), design)

    everyone = fit_alignment(settings.method, responses, design)
    shared = everyone.shared(responses, {s: list(r.stimuli) for s, r in responses.items()})
    with atomic_dir(Path(paths.out)) as out:
        save_npy(np.vstack([m.matrix for m in shared.values()]).astype(np.float32), out / "shared.npy")
        pd.DataFrame({"subject": [s for s, m in shared.items() for _ in m.stimuli],
                      "image_name": [n for m in shared.values() for n in m.stimuli]}).to_parquet(out / "index.parquet")
    with atomic_dir(Path(paths.plots)) as out:
        table.to_csv(out / "fewshot.csv", index=False)
        if planted_rows:
            pd.DataFrame(planted_rows).to_csv(out / "planted.csv", index=False)
        fewshot_curves(table, out / "fewshot.png")
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts([Path(paths.plots) / "fewshot.png"], "align")
    tracking.log_table(table, "align/fewshot.json")
    return metrics


def _metrics(table: pd.DataFrame, planted: pd.DataFrame, design: FewShotDesign) -> dict[str, float]:
    """align.<method>.<target>.two_way_k<k> (and _all), mean over held-out subjects;
    align.<method>.<target>.images_to_90 (median over subjects; NaN when half of them never reach it);
    align.<method>.planted.canonical_r (mean over components); align.n_test."""
    out: dict[str, float] = {"align.n_test": float(len(design.test))}
    for (method, target), rows in table.groupby(["method", "target"], sort=False):
        largest = rows.groupby("subject")["k"].transform("max") == rows["k"]
        for k, values in rows[~largest | rows["k"].isin(design.ks)].groupby("k"):
            out[f"align.{method}.{target}.two_way_k{k}"] = float(values["two_way"].mean())
        out[f"align.{method}.{target}.two_way_all"] = float(rows[largest]["two_way"].mean())
    reached = images_to_reach(table)
    for method, target in sorted({(m, t) for _, m, t in reached}):
        # a subject that never reaches it counts as infinitely many: NaN when half of them never do
        values = [np.inf if v != v else v for (_, m, t), v in reached.items() if m == method and t == target]
        median = float(np.median(values))
        out[f"align.{method}.{target}.images_to_90"] = median if np.isfinite(median) else float("nan")
    for method, rows in planted.groupby("method", sort=False):
        out[f"align.{method}.planted.canonical_r"] = float(rows["canonical_r"].mean())
    return out
