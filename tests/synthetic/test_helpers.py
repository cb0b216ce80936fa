"""Tests of the helpers the synthetic retailer's draws share: items per owner, picks, ids, calendar.

``test_retailer.py`` checks the exports end to end; these pin the small contracts the draws rely
on, with hand-computed answers.
"""

from __future__ import annotations

import numpy as np
import pytest

from personas.synthetic.calendar import DAY, make_calendar
from personas.synthetic.columns import coded, labels, numbered, order_ids
from personas.synthetic.planted import NOISE_LEVELS, noise_level
from personas.synthetic.sampling import pick, segments


def test_segments_gives_owner_and_rank() -> None:
    owner, rank = segments(np.array([2, 0, 3]))
    assert owner.tolist() == [0, 0, 2, 2, 2]
    assert rank.tolist() == [0, 1, 0, 1, 2]


def test_pick_follows_each_owners_cumulative_probabilities() -> None:
    cum = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.5, 0.5, 1.0]])
    rows = np.array([0, 1, 0, 1] + [2] * 4_000)
    got = pick(np.random.default_rng(0), cum, rows)
    assert got[:4].tolist() == [0, 2, 0, 2]  # certain outcomes
    assert set(got[4:].tolist()) == {0, 2}  # category 1 has probability 0
    assert 0.45 < np.mean(got[4:] == 0) < 0.55


def test_ids_and_labels() -> None:
    assert numbered("C", np.array([42]), 8).to_pylist() == ["C00000042"]
    ids = order_ids(np.array([False, True]), np.array([7, 7]))
    assert ids.to_pylist() == ["O000000007", "R000000007"]
    assert labels(("a", "b"), np.array([1, -1, 0])).to_pylist() == ["b", None, "a"]
    assert coded(numbered("C", np.array([1, 2]), 2), np.array([1, -1])).to_pylist() == [
        "C02",
        None,
    ]


def test_noise_level_accepts_names_and_fractions() -> None:
    assert noise_level("noisy") == NOISE_LEVELS["noisy"]
    assert noise_level(0.3) == 0.3
    for bad in ("medium", 1.5, -0.1):
        with pytest.raises(ValueError, match="noise"):
            noise_level(bad)


def test_calendar_covers_the_window_with_sales_and_a_december_peak() -> None:
    cal = make_calendar("2023-01-01", "2023-12-31")
    assert cal.end_day - cal.start_day == 365
    assert cal.cdf_regular[0] == 0.0 and cal.cdf_regular[-1] == pytest.approx(1.0)
    assert np.all(np.diff(cal.cdf_regular) > 0)
    day = np.diff(cal.cdf_regular)  # intensity per day
    black_friday = (np.datetime64("2023-11-24") - np.datetime64("2023-01-01")).astype(int)
    assert cal.in_sale[black_friday] and not cal.in_sale[black_friday - 10]
    assert day[340:360].mean() > 1.5 * day[150:170].mean()  # December beats June
    assert np.allclose(cal.hour_cdf[:, -1], 1.0)
    assert DAY == 24 * 3600
    with pytest.raises(ValueError, match="180 days"):
        make_calendar("2023-01-01", "2023-03-01")
