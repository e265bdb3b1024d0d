"""Stage fmri: each method's samples, and the planted signal they do or do not carry."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolatent.pipeline.params import validate_params
from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.science.sampling import volume_at_lag
from neurolatent.science.stats import zscore
from neurolatent.pipeline.stages.fmri import _tr_index

from conftest import run_stage


def run_fmri(raw: Path, trials: Path, out: Path, **preprocess) -> dict:
    return run_stage("fmri", {"preprocess": {"jobs": 1, **preprocess}}, raw=raw, trials=trials, out=out)


def make_trials(raw: Path, where: Path) -> Path:
    run_stage("trials", raw=raw, trials=where / "trials.parquet", stimuli=where / "stimuli.parquet")
    return where / "trials.parquet"


def planted_r(dataset, out: Path) -> dict[str, float]:
    """Pearson r between each subject's samples and its planted patterns of the same trials."""
    _, truth = dataset
    samples = np.load(out / "samples.npy")
    index = pd.read_parquet(out / "index.parquet")
    names = pd.read_csv(truth / "stimuli.tsv", sep="\t")["image_name"]
    row = pd.Series(np.arange(len(names)), index=names)
    result = {}
    for subject in index["subject"].unique():
        own = (index["subject"] == subject).to_numpy()
        planted = np.load(truth / f"patterns_sub-{subject}.npy")[row[index.loc[own, "image_name"]].to_numpy()]
        result[subject] = float(np.corrcoef(samples[own][:, : planted.shape[1]].ravel(), planted.ravel())[0, 1])
    return result


@pytest.fixture(scope="module")
def trials_small(small_dataset, tmp_path_factory):
    return make_trials(small_dataset[0], tmp_path_factory.mktemp("trials"))


@pytest.fixture(scope="module")
def trials_null(null_dataset, tmp_path_factory):
    return make_trials(null_dataset[0], tmp_path_factory.mktemp("trials_null"))


def _run(dataset, trials, out, **values):
    return run_fmri(dataset[0], trials, out, **values)


@pytest.mark.parametrize("method", ["betas", "volume"])
def test_planted_signal_found_at_high_snr_not_at_zero(small_dataset, null_dataset, trials_small, trials_null,
                                                      tmp_path, method):
    _run(small_dataset, trials_small, tmp_path / "hi", method=method)
    _run(null_dataset, trials_null, tmp_path / "null", method=method)
    hi, null = planted_r(small_dataset, tmp_path / "hi"), planted_r(null_dataset, tmp_path / "null")
    # SNR 4: a single trial's estimate is the planted value plus noise of sd ~ 1/4 to 1/2 of it
    # (betas: GLM over 37 overlapping trials; volume: one interpolated time point), so r should
    # be near 0.9; 0.7 leaves room for the estimator's noise. Under the null, 148 trials x ~220
    # voxels of correlated values: |r| < 0.1 is a loose bound (observed ~0.01).
    assert all(r > 0.7 for r in hi.values()), hi
    assert all(abs(r) < 0.1 for r in null.values()), null
    meta = json.loads((tmp_path / "hi" / "samples.json").read_text())
    samples = np.load(tmp_path / "hi" / "samples.npy", mmap_mode="r")
    assert meta["method"] == method and meta["dtype"] == "float32"
    assert list(samples.shape) == [meta["n_samples"], *meta["sample_shape"]]
    assert (tmp_path / "hi" / "mask_sub-CSI1.nii.gz").is_file()


def test_study_lag_zero_recovers_less(small_dataset, trials_small, tmp_path):
    _run(small_dataset, trials_small, tmp_path / "lag", method="volume")
    _run(small_dataset, trials_small, tmp_path / "zero", method="volume", lag_s=0, anchor="offset")
    with_lag, without = planted_r(small_dataset, tmp_path / "lag"), planted_r(small_dataset, tmp_path / "zero")
    for subject in with_lag:
        assert without[subject] < with_lag[subject] - 0.3, (with_lag, without)


def test_lss_agrees_with_lsa(small_dataset, trials_small, tmp_path):
    _run(small_dataset, trials_small, tmp_path / "lss", method="betas", glm="lss", noise_model="ols")
    assert all(r > 0.7 for r in planted_r(small_dataset, tmp_path / "lss").values())


@pytest.mark.parametrize("engine", ["nilearn", "fast"])
def test_rendered_samples(small_dataset, trials_small, tmp_path, engine):
    summary = _run(small_dataset, trials_small, tmp_path / "r", method="rendered", render={"size": 48, "engine": engine})
    samples = np.load(tmp_path / "r" / "samples.npy", mmap_mode="r")
    index = pd.read_parquet(tmp_path / "r" / "index.parquet")
    assert samples.shape == (4 * 37, 3, 48, 48) and samples.dtype == np.uint8
    assert summary["fmri.samples"] == len(index) == 4 * 37
    assert samples[:8].std() > 10  # a picture, not a blank
    meta = json.loads((tmp_path / "r" / "samples.json").read_text())
    assert meta["sample_shape"] == [3, 48, 48] and meta["dtype"] == "uint8"


def test_every_tr_index():
    run = pd.DataFrame({"trial": [1, 2], "onset": [6.04, 16.01], "image_name": ["a.jpg", "b.jpg"]})
    index = _tr_index(run, ("CSI1", 1, 1), 10, 2.0)
    assert index["volume"].tolist() == list(range(10))
    # volumes at 0-6 s come before the first onset (6.04 s); 8-16 s show a, 18 s shows b
    assert index["image_name"].isna().tolist() == [True] * 4 + [False] * 6
    assert index["image_name"].iloc[4:].tolist() == ["a.jpg"] * 5 + ["b.jpg"]


def test_volume_at_lag_on_a_known_series():
    series = np.arange(10, dtype=np.float32)[:, None] * np.array([[1.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(volume_at_lag(series, 2.0, np.array([2.0]), 4.2), [[3.0, 6.0]])
    # window 4-6 s after t=2 s: times 6, 6.5, 7, 7.5, 8 -> volumes 3..4, mean 3.5
    np.testing.assert_allclose(volume_at_lag(series, 2.0, np.array([2.0]), (4.0, 6.0)), [[3.5, 7.0]])
    z = zscore(series)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-6) and np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-6)


def test_nan_volume_is_an_error(small_dataset, dataset_copy, tmp_path):
    raw = dataset_copy
    trials = make_trials(raw, tmp_path)
    path = raw / bids.preproc_path("CSI1", 1, 7)  # the run the default space (T1w) reads
    image = nib.load(path)
    data = np.asanyarray(image.dataobj).astype(np.float32)
    data[..., 5] = np.nan
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(data, image.affine, header), path)
    with pytest.raises(NeurolatentError, match="NaN or infinite"):
        run_fmri(raw, trials, tmp_path / "out", method="volume")
    assert not (tmp_path / "out").exists()


def test_peak_memory_does_not_grow_with_the_number_of_runs(tmp_path):
    """Streaming: 6 runs of a subject take no more peak memory than 2 runs (traced allocations,
    jobs=1 so every allocation is in this process)."""
    import tracemalloc

    from conftest import write_dataset

    data = validate_params({"data": {"subjects": ["CSI1"], "sessions": [1], "runs": [1, 2, 3, 4, 5, 6],
                                      "synthetic": {"voxel_size_mm": 4, "image_size": 32, "jobs": 2}}}).data
    raw, truth = tmp_path / "raw", tmp_path / "truth"
    write_dataset(data, raw, truth)
    trials = pd.read_parquet(make_trials(raw, tmp_path))
    peaks = {}
    for n_runs in (2, 6):
        subset = tmp_path / f"trials{n_runs}.parquet"
        trials[trials["run"] <= n_runs].to_parquet(subset)
        tracemalloc.start()
        run_fmri(raw, subset, tmp_path / f"out{n_runs}", method="volume", mask="brain")
        peaks[n_runs] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    one_run = np.prod(nib.load(raw / bids.bold_path("CSI1", 1, 1)).shape) * 4
    assert peaks[6] < peaks[2] + one_run, peaks


@pytest.mark.parametrize("kind", ["int16", "scaled", "big-endian", "nifti2", "uncompressed"])
def test_read_nifti_equals_nibabel(tmp_path, kind):
    from neurolatent.io.nifti import read_nifti

    rng = np.random.default_rng(1)
    data = rng.integers(0, 2000, size=(5, 6, 4, 3)).astype(np.int16)
    image_type = nib.Nifti2Image if kind == "nifti2" else nib.Nifti1Image
    image = image_type(data.astype(">i2") if kind == "big-endian" else data, np.diag([2.0, 2, 2, 1]))
    if kind == "scaled":
        image.header.set_slope_inter(0.5, 10.0)
    path = tmp_path / ("run.nii" if kind == "uncompressed" else "run.nii.gz")
    nib.save(image, path)
    ours, header = read_nifti(path)
    expected = nib.load(path)
    np.testing.assert_array_equal(ours, np.asanyarray(expected.dataobj))
    assert header.get_zooms() == expected.header.get_zooms()


def test_the_studys_floor_picks_the_volume_begun_at_a_time():
    from neurolatent.science.sampling import volume_index

    # BOLD5000's trial: 1 s image; the study took int(StimOff / TR) with TR 2 s
    offsets = np.array([7.0, 9.0, 10.9, 11.0])
    assert list(volume_index(offsets, 2.0, 200, "floor")) == [3, 4, 5, 5]
    assert list(volume_index(offsets, 2.0, 200, "nearest")) == [4, 4, 5, 6]  # 3.5 and 4.5 round to even
