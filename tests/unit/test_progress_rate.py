"""The progress bars' rate column (cli._common.Rate): counted from when its own count started."""

from __future__ import annotations

from b2g_deploy.cli._common import Rate


def test_rate_counts_from_its_first_update_and_restarts_when_the_count_goes_back():
    now = [100.0]  # e.g. minutes of fitting before the first frame is written
    rate = Rate(clock=lambda: now[0])
    assert rate(1) == 0.0  # the first update starts the clock
    now[0] += 2.0
    assert rate(11) == 5.0  # 10 more in 2 s, not 11 in 102 s
    # The temporal fit's second stage counts its steps from 0 again: a new start.
    now[0] += 1.0
    assert rate(0) == 0.0
    now[0] += 4.0
    assert rate(8) == 2.0
