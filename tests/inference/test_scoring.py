"""Streaming scores summarised for a report: the miss rate at 0.5, 1 and 5 false alarms per hour."""
from __future__ import annotations

from kwslab.inference.scoring import miss_rates_at


def test_miss_rate_at_each_false_alarm_rate_is_the_best_point_meeting_it():
    curve = [{"threshold": t, "frr": frr, "fa_per_hour": fa}
             for t, frr, fa in ((0.3, 0.01, 12.0), (0.5, 0.05, 4.0), (0.7, 0.10, 0.9), (0.9, 0.30, 0.0))]
    got = miss_rates_at(curve)
    assert list(got) == ["0.5", "1", "5"]
    assert got["5"] == {"threshold": 0.5, "frr": 0.05, "fa_per_hour": 4.0}
    assert got["1"] == {"threshold": 0.7, "frr": 0.10, "fa_per_hour": 0.9}
    assert got["0.5"]["threshold"] == 0.9
    assert miss_rates_at(curve[:1], (1.0,)) == {"1": None}  # never that quiet: said, not guessed
