"""The scaling model on synthetic histories whose true coefficients and exponents are known."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from lakeplane.compute.scaling import GB, MIN_RUNS, fit
from lakeplane.errors import ScalingError

#: The true job: 3 s start-up, 40 s per GB per core of parallel work, 2 s per GB of serial work,
#: 0.8 s per log(core) of coordination.
TRUE = {"fixed": 3.0, "gb_per_core": 40.0, "gb": 2.0, "log_cores": 0.8}
SIZES_GB = (0.5, 1.0, 2.0, 4.0)
CORES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Run:
    input_bytes: int
    cores: int
    seconds: float


def true_seconds(size: float, cores: int) -> float:
    gb = size / GB
    return (
        TRUE["fixed"]
        + TRUE["gb_per_core"] * gb / cores
        + TRUE["gb"] * gb
        + TRUE["log_cores"] * math.log(cores)
    )


def history(noise: float, seed: int = 42, cores: tuple[int, ...] = CORES) -> list[Run]:
    rng = np.random.default_rng(seed)
    return [
        Run(
            int(s * GB),
            c,
            true_seconds(s * GB, c) * (1 + rng.normal(0, noise)) if noise else true_seconds(s * GB, c),
        )
        for s in SIZES_GB
        for c in cores
    ]


def test_recovers_the_coefficients_without_noise() -> None:
    model = fit("job", history(noise=0.0))
    for term, value in TRUE.items():
        assert model.coefficient(term) == pytest.approx(value, rel=1e-3), term
    assert model.coefficient("cores") == pytest.approx(0.0, abs=1e-6)
    assert model.fit_error < 1e-6 and model.loo_error < 1e-3


def test_recovers_the_dominant_coefficient_with_noise() -> None:
    model = fit("job", history(noise=0.05))
    assert model.coefficient("gb_per_core") == pytest.approx(TRUE["gb_per_core"], rel=0.05)
    assert all(c >= 0 for c in model.coefficients)
    assert 0.01 < model.fit_error < 0.1


def test_exponents_of_a_perfectly_parallel_job() -> None:
    """time = 1 s + 50 s x GB / cores: at a large volume time grows as bytes^1 and falls as cores^-1."""
    runs = [Run(int(s * GB), c, 1.0 + 50.0 * s / c) for s in SIZES_GB for c in CORES]
    at = fit("parallel", runs).predict(400 * GB, 4)
    assert at.bytes_exponent == pytest.approx(1.0, abs=0.01)
    assert at.cores_exponent == pytest.approx(-1.0, abs=0.01)


def test_exponents_of_a_serial_job() -> None:
    """time = 2 s + 30 s x GB, whatever the cores: exponent 1 in bytes, 0 in cores."""
    runs = [Run(int(s * GB), c, 2.0 + 30.0 * s) for s in SIZES_GB for c in CORES]
    at = fit("serial", runs).predict(400 * GB, 8)
    assert at.bytes_exponent == pytest.approx(1.0, abs=0.01)
    assert at.cores_exponent == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("multiple", [10, 100])
def test_ten_and_a_hundred_times_the_volume_fall_in_the_interval(multiple: int) -> None:
    """Over 20 noisy histories (5 % noise) the 90 % interval at 10x and 100x the largest input
    contains the true time in at least 18, and every answer says it is beyond the data."""
    size = int(max(SIZES_GB) * GB * multiple)
    truth = true_seconds(size, 8)
    inside = 0
    for seed in range(20):
        at = fit("job", history(noise=0.05, seed=seed)).predict(size, 8)
        assert at.extrapolated and at.bytes_factor == pytest.approx(multiple)
        assert f"{float(multiple):.1f}x the largest input seen" in at.notes[0]
        assert "widened" in at.notes[-1]
        inside += at.low <= truth <= at.high
        assert at.seconds == pytest.approx(truth, rel=0.15)
    assert inside >= 18


def test_interval_widens_with_the_extrapolation() -> None:
    model = fit("job", history(noise=0.05))
    near, far = (model.predict(int(4 * GB * m), 8) for m in (1, 100))
    assert not near.extrapolated and near.notes == ()
    assert near.low < near.seconds < near.high
    assert (far.high - far.low) / far.seconds > (near.high - near.low) / near.seconds


def test_one_core_count_states_its_assumption() -> None:
    model = fit("job", history(noise=0.02, cores=(2,)))
    assert model.terms == ("fixed", "gb_per_core")
    assert "every run had 2 cores" in model.assumptions[0]
    at = model.predict(int(4 * GB), 8)
    assert at.cores_factor == pytest.approx(4.0)
    assert any("8 cores is 4.0x beyond the core counts seen (2)" in n for n in at.notes)
    within = model.predict(int(4 * GB), 2)
    assert (at.high - at.low) / at.seconds > (within.high - within.low) / within.seconds


def test_few_runs_fit_fewer_terms() -> None:
    runs = [Run(int(s * GB), c, true_seconds(s * GB, c)) for s, c in ((0.5, 1), (1, 2), (2, 4), (4, 8))]
    model = fit("job", runs)
    assert len(model.terms) == 3 and "4 runs fit 3 terms" in model.assumptions[0]


def test_coefficients_stay_non_negative() -> None:
    """Times that fall as input grows (noise, a warm cache) do not make a term negative."""
    runs = [Run(int(s * GB), 2, 10.0 - s) for s in (0.5, 1.0, 2.0, 4.0)]
    model = fit("odd", runs)
    assert all(c >= 0 for c in model.coefficients)
    assert model.predict(int(40 * GB), 2).seconds >= model.predict(int(4 * GB), 2).seconds


def test_too_few_runs_is_a_clear_error() -> None:
    with pytest.raises(ScalingError) as caught:
        fit("nightly", history(noise=0.0)[:2])
    assert caught.value.runs == 2 and caught.value.needed == MIN_RUNS
    assert "nightly: 2 usable run(s)" in str(caught.value)


def test_runs_of_one_size_is_a_clear_error() -> None:
    with pytest.raises(ScalingError, match=r"all read about 1\.0 GB.*differ by at least 1\.2x"):
        fit("nightly", [Run(GB, 2, 10.0 + i) for i in range(5)])


def test_same_history_same_answer_and_seconds_at() -> None:
    runs = history(noise=0.05)
    first, second = fit("job", runs), fit("job", runs)
    assert first.predict(40 * GB, 4) == second.predict(40 * GB, 4)
    assert first.seconds_at(40 * GB)(4) == (lambda p: (p.seconds, p.low, p.high))(first.predict(40 * GB, 4))


def test_times_that_do_not_grow_say_so() -> None:
    """A job whose time is all start-up: the fit is a constant and says predictions at other
    volumes have no evidence behind them."""
    times = (7.4, 7.1, 7.0, 7.0)  # a cold first run, then the same time whatever the input
    model = fit("startup", [Run(int(s * GB), 2, t) for s, t in zip(SIZES_GB, times, strict=True)])
    assert model.coefficient("gb_per_core") == 0.0
    assert any("did not grow with their input" in a for a in model.assumptions)
