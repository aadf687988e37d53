"""The org's daily API limit is reached in the middle of a pass.

Salesforce then refuses every call with REQUEST_LIMIT_EXCEEDED until the 24-hour window rolls on.
The pass must end cleanly (outcome "budget", cursor and links of what landed saved), passes during
the lockout must change nothing, and the first pass after the window rolls on must finish the job:
every record once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.sandbox.salesforce import SalesforceSandbox
from tests.chaos.figures import record_figures
from tests.chaos.scenarios import Expected, FilesToSalesforce, key

from .conftest import one_pass

RECORDS = 150


def test_daily_limit_reached_mid_pass_ends_it_cleanly_and_the_next_day_finishes(
    tmp_path: Path, org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # syncd's own governor would stop first (25% of the limit per pass): let the org's limit be what stops it
    scenario = FilesToSalesforce(tmp_path, org, settings={"max_pass_share": 1, "max_org_share": 1})
    scenario.add(range(RECORDS), "v1")
    expected = Expected({key(n): "v1" for n in range(RECORDS)})
    used, _ = org.api_usage()
    org.set_daily_limit(used + 12)
    cut = one_pass(tmp_path, scenario, monkeypatch)
    landed = len(scenario.target())
    locked_out = one_pass(tmp_path, scenario, monkeypatch)
    after_lockout = len(scenario.target())
    org.reset_api_usage()
    org.set_daily_limit(1_000_000)
    next_day = one_pass(tmp_path, scenario, monkeypatch)
    record_figures(
        "daily limit mid-pass: files->salesforce",
        landed_before_limit=landed,
        cut_outcome=cut.outcome,
        next_day_created=next_day.counts["created"],
    )
    assert cut.outcome == "budget", cut.message
    assert 0 < landed < RECORDS
    assert locked_out.outcome == "budget"
    assert after_lockout == landed, "a pass during the lockout changed something"
    assert next_day.outcome == "ok", next_day.message
    assert next_day.counts["created"] == RECORDS - landed
    assert expected.check(scenario.target()) == (0, [])
