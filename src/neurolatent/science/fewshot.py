"""A new subject from few of its images: leave one subject out, align it, decode it.

For each held-out subject h (:func:`leave_one_out`):

1. the alignment (:mod:`neurolatent.science.alignment`) is fitted on the other subjects: the
   stimulus-locked methods on the training images every subject saw (matched by name), the
   feature-anchored adapter on each subject's own training images and their image features;
2. a decoder per image model (ridge, :class:`~neurolatent.science.mapping.RidgeMapping`) is fitted
   from the others' shared-space responses to that model's latents, on all their training images;
3. h is mapped in from k of its training images (the first k of one seeded order, so each k's
   images contain the smaller k's), its test images carried into the shared space and decoded;
   they are identified among each other (2-way accuracy with a bootstrap CI over test images,
   top-1), against ``scratch``: the same ridge fitted on h's own k images alone;
4. between subjects (target ``subjects``): h's aligned response to each test image is matched
   against the others' mean aligned response to it, the classic hyperalignment check.

Every response matrix is z-scored per voxel with statistics of the rows it is fitted on only (h's:
its k images), so no test image reaches a fit. Rows are :class:`StimulusMatrix` joined by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolatent.science.alignment import FeatureAdapter, build_alignment
from neurolatent.science.identification import row_correlations
from neurolatent.science.mapping import RidgeMapping
from neurolatent.science.stimuli import StimulusMatrix
from neurolatent.science.constraints import Count, Fraction, Seed, check_values, checked

#: the target of between-subject identification, and the method name of the unaligned baseline
SUBJECTS, SCRATCH = "subjects", "scratch"


@dataclass(frozen=True)
class Scores:
    """Identification of n test items: two_way (mean over items of the share of foils beaten; ties
    1/2; chance 0.5), ci_low/ci_high (percentile bootstrap of that mean over items), top1 (share
    of items whose own candidate is the most similar; chance 1/n)."""

    two_way: float
    ci_low: float
    ci_high: float
    top1: float


@checked(bootstrap=Count, ci=Fraction)
def identify(predicted: np.ndarray, candidates: np.ndarray, rng: np.random.Generator, bootstrap: int,
             ci: float) -> Scores:
    """Identify each predicted row (n, d) among the candidate rows (n, d) of one space by Pearson r
    (row i's match is candidate i); the CI resamples the n items' own 2-way scores."""
    similarity = row_correlations(predicted, candidates)
    n = len(similarity)
    own = np.diag(similarity)[:, None]
    beaten = ((own > similarity).sum(axis=1) + 0.5 * ((own == similarity).sum(axis=1) - 1)) / (n - 1)
    means = beaten[rng.integers(0, n, size=(bootstrap, n))].mean(axis=1)
    tail = (1 - ci) / 2
    return Scores(float(beaten.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)),
                  float(np.mean((similarity > own).sum(axis=1) == 0)))


def _standardise(fit_rows: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Each matrix z-scored per column with ``fit_rows``' mean and sd (a constant column: sd 1)."""
    mean, sd = fit_rows.mean(axis=0), fit_rows.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(m - mean) / sd for m in (fit_rows, *others)]


@dataclass(frozen=True)
class FewShotDesign:
    """What every held-out subject is evaluated on.

    test : the test images (every subject saw them); ks : the k of each few-shot fit, ascending
    (each at most what every subject has; :func:`image_order`'s length is "all"); anchor : the
    image features of the adapter, (n_images, q) by name; targets : {image model: its latents};
    features, n_iter, seed : the alignment's; bootstrap, ci : the identification CI's.
    """

    test: tuple[str, ...]
    ks: tuple[int, ...]
    anchor: StimulusMatrix
    targets: dict[str, StimulusMatrix]
    features: int
    n_iter: int
    seed: int
    bootstrap: int = 1000
    ci: float = 0.95

    def __post_init__(self) -> None:
        check_values(features=(self.features, Count), n_iter=(self.n_iter, Count), seed=(self.seed, Seed),
                     bootstrap=(self.bootstrap, Count), ci=(self.ci, Fraction))


def common_images(responses: dict[str, StimulusMatrix], test: tuple[str, ...]) -> list[str]:
    """The training images every subject saw, sorted by name (the stimulus-locked methods' columns)."""
    shared = set.intersection(*(set(r.stimuli) for r in responses.values())) - set(test)
    return sorted(shared)


def image_order(subject: StimulusMatrix, common: list[str], test: tuple[str, ...], seed: int) -> list[str]:
    """The subject's training images in the order few-shot fits take them: the common ones first
    (a seeded permutation), then its own others; the first k are a fit's images."""
    rng = np.random.default_rng(seed)
    own = sorted(set(subject.stimuli) - set(common) - set(test))
    return [common[i] for i in rng.permutation(len(common))] + [own[i] for i in rng.permutation(len(own))]


@dataclass(frozen=True)
class Alignment:
    """An alignment fitted on some subjects, with each subject's per-voxel z-scoring (mean, sd of
    its training images): ``model`` is :func:`~neurolatent.science.alignment.build_alignment`'s."""

    model: object
    scaling: dict[str, tuple[np.ndarray, np.ndarray]]

    def shared(self, responses: dict[str, StimulusMatrix], names: dict[str, list[str]]) -> dict[str, StimulusMatrix]:
        """{subject: its responses to ``names[subject]`` in the shared space, (n, features)}."""
        z = [(responses[s].rows(names[s]) - mean) / sd for s, (mean, sd) in self.scaling.items()]
        return {s: StimulusMatrix(f"shared/{s}", x.T, tuple(names[s]))
                for s, x in zip(self.scaling, self.model.transform([m.T for m in z]))}


def fit_alignment(method: str, responses: dict[str, StimulusMatrix], design: FewShotDesign) -> Alignment:
    """``method`` fitted on ``responses`` (every subject but a new one): the stimulus-locked methods
    on the common training images, the adapter on each subject's own training images."""
    common = common_images(responses, design.test)
    model = build_alignment(method, design.features, design.n_iter, design.seed)
    train = {s: [n for n in r.stimuli if n not in set(design.test)] for s, r in responses.items()}
    scaling = {}
    for s, r in responses.items():
        rows = r.rows(train[s])
        sd = rows.std(axis=0)
        scaling[s] = (rows.mean(axis=0), np.where(sd > 0, sd, 1.0))
    fitted = Alignment(model, scaling)
    z = {s: (r.rows(common if not isinstance(model, FeatureAdapter) else train[s]) - scaling[s][0]) / scaling[s][1]
         for s, r in responses.items()}
    if isinstance(model, FeatureAdapter):
        model.fit([m.T for m in z.values()], [design.anchor.rows(train[s]) for s in responses])
    else:
        model.fit([m.T for m in z.values()])
    return fitted


def leave_one_out(method: str, responses: dict[str, StimulusMatrix], held_out: str, design: FewShotDesign,
                  rng: np.random.Generator) -> list[dict]:
    """Rows (subject, method, k, target, two_way, ci_low, ci_high, top1) for ``held_out`` aligned by
    ``method`` from each k of ``design.ks`` and from all its training images (``method`` may be
    :data:`SCRATCH`: ridge on the subject's own k images, no alignment)."""
    others = {s: r for s, r in responses.items() if s != held_out}
    subject = responses[held_out]
    common = common_images(responses, design.test)
    order = image_order(subject, common, design.test, design.seed)
    test = list(design.test)
    rows = []
    if method == SCRATCH:
        for k in (*design.ks, len(order)):
            x, x_test = _standardise(subject.rows(order[:k]), subject.rows(test))
            for target, latents in design.targets.items():
                fitted = RidgeMapping().fit(x, latents.rows(order[:k]))
                scores = identify(*fitted.transform(x_test, latents.rows(test)), rng, design.bootstrap, design.ci)
                rows.append({"subject": held_out, "method": method, "k": k, "target": target, **vars(scores)})
        return rows
    alignment = fit_alignment(method, others, design)
    model = alignment.model
    shared = alignment.shared(others, {s: [n for n in r.stimuli if n not in set(test)] for s, r in others.items()})
    decoders = {target: RidgeMapping().fit(np.vstack([m.matrix for m in shared.values()]),
                                           np.vstack([latents.rows(m.stimuli) for m in shared.values()]))
                for target, latents in design.targets.items()}
    others_test = np.mean([m.matrix for m in alignment.shared(others, {s: test for s in others}).values()], axis=0)
    reachable = len(order) if isinstance(model, FeatureAdapter) else len(common)
    # the fit's columns are the images the others share, which may be more than everyone shares
    column = {name: i for i, name in enumerate(common_images(others, design.test))}
    for k in (*[k for k in design.ks if k <= reachable], reachable):
        x, x_test = _standardise(subject.rows(order[:k]), subject.rows(test))
        if isinstance(model, FeatureAdapter):
            w = model.transform_subject(x.T, design.anchor.rows(order[:k]))
        else:
            w = model.transform_subject(x.T, np.array([column[n] for n in order[:k]]))
        aligned = x_test @ w
        for target, decoder in decoders.items():
            scores = identify(*decoder.transform(aligned, design.targets[target].rows(test)), rng, design.bootstrap,
                              design.ci)
            rows.append({"subject": held_out, "method": method, "k": k, "target": target, **vars(scores)})
        scores = identify(aligned, others_test, rng, design.bootstrap, design.ci)
        rows.append({"subject": held_out, "method": method, "k": k, "target": SUBJECTS, **vars(scores)})
    return rows


def images_to_reach(table, share: float = 0.9) -> dict[tuple[str, str, str], float]:
    """The headline: per (subject, method, target), the fewest k whose 2-way accuracy reaches
    ``share`` of the subject's own all-image accuracy (``scratch`` at its largest k); NaN if none.

    table : DataFrame with fewshot.csv's columns."""
    out = {}
    scratch = table[table["method"] == SCRATCH]
    own = scratch.loc[scratch.groupby(["subject", "target"])["k"].idxmax()].set_index(["subject", "target"])["two_way"]
    for (subject, method, target), rows in table[table["target"] != SUBJECTS].groupby(["subject", "method", "target"]):
        reached = rows[rows["two_way"] >= share * own.loc[(subject, target)]]
        out[(subject, method, target)] = float(reached["k"].min()) if len(reached) else float("nan")
    return out


def planted_space(method: str, responses: dict[str, StimulusMatrix], design: FewShotDesign) -> StimulusMatrix:
    """The method's shared space over the common training images, fitted on every subject: the
    mean of the subjects' shared-space responses, (n_common, features), rows by name."""
    common = common_images(responses, design.test)
    shared = fit_alignment(method, responses, design).shared(responses, {s: common for s in responses})
    return StimulusMatrix(f"{method}/shared", np.mean([m.rows(common) for m in shared.values()], axis=0),
                          tuple(common))


@checked(fraction=Fraction, min_test=Count, seed=Seed)
def common_test_images(responses: dict[str, StimulusMatrix], fraction: float, min_test: int,
                       seed: int) -> tuple[str, ...]:
    """A seeded ``fraction`` of the images every subject saw, sorted: the test images of every
    subject. ValueError when fewer than ``min_test`` (subjects that share few images cannot be
    identified between each other)."""
    common = sorted(set.intersection(*(set(r.stimuli) for r in responses.values())))
    n_test = int(round(fraction * len(common)))
    if n_test < min_test:
        raise ValueError(f"the subjects share {len(common)} images, {n_test} of them test images (at least "
                         f"{min_test} needed): select runs the subjects share (data.synthetic.same_images: true)")
    chosen = np.random.default_rng(seed).choice(len(common), size=n_test, replace=False)
    return tuple(sorted(common[i] for i in chosen))


def check_ks(ks: list[int], responses: dict[str, StimulusMatrix], test: tuple[str, ...]) -> None:
    """ValueError naming the subject when a k exceeds its training images (its images less ``test``)."""
    for subject, matrix in responses.items():
        available = len(set(matrix.stimuli) - set(test))
        if max(ks) > available:
            raise ValueError(f"k = {max(ks)} is more than {subject}'s {available} training images "
                             f"({len(matrix.stimuli)} images, {len(test)} of them test)")


def check_features(features: int, responses: dict[str, StimulusMatrix], test: tuple[str, ...]) -> None:
    """ValueError when the shared space would be wider than a subject's voxels or than the training
    images the subjects share (what the stimulus-locked methods are fitted on)."""
    voxels = min(r.matrix.shape[1] for r in responses.values())
    common = len(common_images(responses, test))
    if features > min(voxels, common):
        raise ValueError(f"{features} shared dimensions: more than the {min(voxels, common)} "
                         f"{'voxels of a subject' if voxels < common else 'training images the subjects share'}")


def side_by_side(matrices: list[StimulusMatrix], names: tuple[str, ...]) -> StimulusMatrix:
    """Image features of several models as one matrix over ``names``: each z-scored per column and
    scaled by 1/sqrt(its width), so every model weighs the same whatever its width."""
    blocks = [_standardise(m.rows(names))[0] / np.sqrt(m.matrix.shape[1]) for m in matrices]
    return StimulusMatrix("+".join(m.name for m in matrices), np.hstack(blocks).astype(np.float32), names)


def planted_subjects(snr: float, n_subjects: int = 4, n_images: int = 150, voxels: int = 300, shared_dims: int = 0,
                     seed: int = 0) -> tuple[dict[str, StimulusMatrix], StimulusMatrix]:
    """Known-answer subjects for tests and benchmarks, as the twin plants them: each subject's
    (n_images, voxels) responses its own random linear map of 18 N(0, 1) planted features (and
    ``shared_dims`` more shared dimensions no feature describes), unit sd per voxel, times ``snr``,
    plus unit noise. Returns ({subject: responses}, the planted features (n_images, 18))."""
    rng = np.random.default_rng(seed)
    names = tuple(f"img{i:04d}.jpg" for i in range(n_images))
    features = rng.standard_normal((n_images, 18))
    content = np.hstack([features, rng.standard_normal((n_images, shared_dims))])
    subjects = {}
    for s in range(n_subjects):
        patterns = content @ rng.normal(0, 1 / np.sqrt(content.shape[1]), (content.shape[1], voxels))
        patterns = (patterns - patterns.mean(axis=0)) / patterns.std(axis=0)
        subjects[f"S{s}"] = StimulusMatrix(f"S{s}", snr * patterns + rng.standard_normal(patterns.shape), names)
    return subjects, StimulusMatrix("planted", features, names)
