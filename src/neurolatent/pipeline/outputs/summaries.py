"""A run's summaries: its headline (at most 15 numbers from the stages' detailed metrics) and each
stage's closing line.

``dvc exp show`` reads ``metrics/summary.json`` only (the ``summary`` stage writes it from this
module), so a table of experiments fits a 200-column terminal; every number stays in
``metrics/<stage>.json`` and in MLflow. Pure functions on flat ``{key: value}`` dicts with the
stages' keys (``rsa.<fmri>.<model>.<statistic>``, ``stitch.decode...``, ``<stage>.best_val_loss``).
"""

from __future__ import annotations

import math
import re

import pandas as pd

from neurolatent.science.rsa.results import ModelComparison

#: the synthetic data's planted truth: a reference, never a candidate for "best model"; its feature
#: families are ``planted_<family>`` (references too)
TRUTH = "planted"
#: the category hypothesis RDM: a reference, not an image model
CATEGORY = "category"
#: the statistics of each RSA comparison in metrics/rsa.json (``rsa.<fmri>.<model>.<statistic>``):
#: the comparison's (:class:`neurolatent.science.rsa.results.ModelComparison`) and linear CKA's
RSA_STATISTICS = (*ModelComparison.STATISTICS, "cka", "cka_p", "cka_p_method")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def is_reference(model: str) -> bool:
    """The planted truth (and its families) and the category model: references a reader compares
    image models with, never the "best model" themselves."""
    return model == TRUTH or model.startswith(f"{TRUTH}_") or model == CATEGORY


def rsa_models(details: dict, fmri: str) -> list[str]:
    """The models compared with fMRI representation ``fmri`` (``ae``, ``samples``) over the union of
    the ROIs (``rsa.<fmri>.<model>.r``; a ROI's are ``rsa.<fmri>.<roi>.<model>.r``)."""
    pattern = re.compile(rf"^rsa\.{re.escape(fmri)}\.([^.]+)\.r$")
    return sorted({m.group(1) for key in details if (m := pattern.match(key))})


def best_rsa_model(details: dict, fmri: str) -> str | None:
    """The image model (no reference: :func:`is_reference`) with the highest group RSA r for ``fmri``."""
    scored = [(details[f"rsa.{fmri}.{model}.r"], model) for model in rsa_models(details, fmri)
              if not is_reference(model) and _finite(details.get(f"rsa.{fmri}.{model}.r"))]
    return max(scored)[1] if scored else None


def best_decoding(details: dict) -> str | None:
    """The ``stitch.decode.<fmri>.<model>.<method>`` prefix with the highest 2-way accuracy (image
    models only, no reference; the union of the ROIs, not one ROI's)."""
    pattern = re.compile(r"^stitch\.decode\.([^.]+)\.([^.]+)\.([^.]+)\.two_way$")
    scored = [(value, key[:-len(".two_way")]) for key, value in details.items()
              if (m := pattern.match(key)) and m.group(1) != "chance" and not is_reference(m.group(2))
              and _finite(value)]
    return max(scored)[1] if scored else None


def headline(details: dict) -> dict[str, float]:
    """At most 15 numbers, named short because they are ``dvc exp show``'s column headers: per fMRI
    representation (``ae``, ``samples``) its best image model's RSA ``r``, ``p``, 95% CI (``lo``,
    ``hi``) and lower noise ceiling (``nc``); the best decoding's ``2way`` and ``top1`` accuracy;
    the best encoding model's median voxel r (``enc.r``); each autoencoder's best validation loss
    (``fmri_ae.loss``, ``image_ae.loss``). A number the run did not make is left out."""
    out: dict[str, float] = {}
    for fmri in ("ae", "samples"):
        model = best_rsa_model(details, fmri)
        if model is None:
            continue
        for name, key in (("r", "r"), ("p", "p"), ("lo", "ci_low"), ("hi", "ci_high")):
            out[f"{fmri}.{name}"] = details[f"rsa.{fmri}.{model}.{key}"]
        out[f"{fmri}.nc"] = details.get(f"rsa.{fmri}.noise_ceiling_lower", math.nan)
    decoding = best_decoding(details)
    if decoding is not None:
        out["2way"] = details[f"{decoding}.two_way"]
        out["top1"] = details[f"{decoding}.top1"]
    encoding = [value for key, value in details.items()
                if (m := re.fullmatch(r"stitch\.encode\.([^.]+)\.median_r", key)) and not is_reference(m.group(1))
                and _finite(value)]
    if encoding:
        out["enc.r"] = max(encoding)
    for stage in ("fmri_ae", "image_ae"):
        if _finite(details.get(f"{stage}.best_val_loss")):
            out[f"{stage}.loss"] = details[f"{stage}.best_val_loss"]
    return out


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_line(stage: str, metrics: dict) -> str:
    """A stage's closing line when its module states none (``closing_line``): its few numbers
    (``<stage>.`` dropped), or how many there are."""
    numbers = {key.removeprefix(f"{stage}."): value for key, value in metrics.items()}
    if len(numbers) > 15:
        return f"{stage}: {len(numbers)} metrics (see the stage's metrics JSON)"
    return f"{stage}: " + ", ".join(f"{key} {_short(value)}" for key, value in numbers.items())


def rsa_line(metrics: dict) -> str:
    """The rsa stage's closing line: per fMRI representation its best image model's r, CI, p, the
    noise ceiling and the planted truth's r."""
    parts = []
    for fmri in ("ae", "samples"):
        model = best_rsa_model(metrics, fmri)
        if model is None:
            continue
        at = f"rsa.{fmri}.{model}"
        text = (f"fMRI {fmri}: best image model {model} r {metrics[f'{at}.r']:.3f} "
                f"[{metrics[f'{at}.ci_low']:.3f}, {metrics[f'{at}.ci_high']:.3f}] p {metrics[f'{at}.p']:.2g}")
        if _finite(metrics.get(f"rsa.{fmri}.noise_ceiling_lower")):
            text += f", noise ceiling {metrics[f'rsa.{fmri}.noise_ceiling_lower']:.3f}"
        if _finite(metrics.get(f"rsa.{fmri}.{TRUTH}.r")):
            text += f" (planted truth r {metrics[f'rsa.{fmri}.{TRUTH}.r']:.3f})"
        parts.append(text)
    return "rsa: " + "; ".join(parts) if parts else summary_line("rsa", metrics)


def stitch_line(metrics: dict) -> str:
    """The stitch stage's closing line: the best decoding's 2-way and top-1, the best encoding's r."""
    parts = []
    decoding = best_decoding(metrics)
    if decoding is not None:
        parts.append(f"best decoding {decoding.removeprefix('stitch.decode.')}: 2-way "
                     f"{metrics[f'{decoding}.two_way']:.3f} (chance 0.5), top-1 {metrics[f'{decoding}.top1']:.3f}")
    encoding = {key: value for key, value in metrics.items()
                if (m := re.fullmatch(r"stitch\.encode\.([^.]+)\.median_r", key)) and not is_reference(m.group(1))
                and _finite(value)}
    if encoding:
        best = max(encoding, key=encoding.get)
        parts.append(f"best encoding {best.removeprefix('stitch.encode.').removesuffix('.median_r')}: "
                     f"median voxel r {encoding[best]:.3f}")
    return "stitch: " + "; ".join(parts) if parts else summary_line("stitch", metrics)


def fit_line(stage: str, metrics: dict) -> str:
    """An autoencoder stage's closing line: its best validation loss, at which epoch, and the test loss."""
    if not _finite(metrics.get(f"{stage}.best_val_loss")):
        return summary_line(stage, metrics)
    stopped = ", stopped early" if metrics.get(f"{stage}.stopped_early") else ""
    parts = [f"best validation loss {metrics[f'{stage}.best_val_loss']:.4g} (MSE per element) at epoch "
             f"{metrics[f'{stage}.best_epoch']} of {metrics[f'{stage}.epochs']}{stopped}"]
    if _finite(metrics.get(f"{stage}.test_loss")):
        parts.append(f"test loss {metrics[f'{stage}.test_loss']:.4g}")
    return f"{stage}: " + "; ".join(parts)


def metric_tables(metrics: dict[str, float], stage: str, contains: str | None = None) -> str:
    """A stage's flat metrics as tables a terminal shows: the key's last part (r, p, ci_low...) a
    column, the rest (less the stage's prefix) a row, one table per set of columns; only keys
    containing ``contains`` when given."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if contains is not None and contains not in key:
            continue
        name, _, statistic = key.removeprefix(f"{stage}.").rpartition(".")
        rows.setdefault(name or "(stage)", {})[statistic] = value
    first = ("r", "unique", "two_way", "median_r", "ci_low", "ci_high", "p", "p_fwe")
    groups: dict[tuple[str, ...], dict[str, dict[str, float]]] = {}
    for name, values in rows.items():
        columns = tuple(sorted(values, key=lambda c: (first.index(c) if c in first else len(first), c)))
        groups.setdefault(columns, {})[name] = values
    tables = []
    for columns, members in groups.items():
        frame = pd.DataFrame.from_dict(members, orient="index", columns=list(columns))
        tables.append(frame.to_string(float_format=lambda v: f"{v:.4g}", line_width=200))
    return "\n\n".join(tables)
