"""The benchmark harness (bench/bench.py) keeps working: one quick round of its new-connections case
against the installed `tern`, with nginx left out where it is not installed. This checks the
plumbing (server started pinned and stopped, wrk run and read, report written), never a speed."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench.py"
TERN = Path(sys.executable).parent / "tern"


def require_tool(name):
    """wrk and taskset: scripts/test.sh installs wrk, so in CI (TERN_REQUIRE_BENCH_TOOLS=1) a missing
    tool fails the test instead of skipping it."""
    if shutil.which(name) is None:
        message = f"{name} is not installed (apt-get install {name}; scripts/test.sh does)"
        if os.environ.get("TERN_REQUIRE_BENCH_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def test_quick_new_connections_case_writes_its_row(tmp_path):
    require_tool("wrk")
    require_tool("taskset")
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--only-case", "new-connections", "--allow-missing-peers",
         "--tern", str(TERN), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=50, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr
    report = (tmp_path / "quick.md").read_text()
    assert "QUICK RUN" in report
    row = re.search(r"^\| tern \| defaults \| (\d+) \| ([\d.]+) \| (.*) \|$", report, re.M)
    assert row, report
    assert int(row.group(1)) > 0, report
    # Every request was answered 200: wrk's non-2xx count is shown in the errors column when not.
    assert "non-2xx" not in row.group(3), report
    if shutil.which("nginx"):
        assert re.search(r"^\| nginx \| .* \| \d+ \| [\d.]+ \|", report, re.M), report
        assert (tmp_path / "quick-chart.svg").read_text().startswith("<svg"), report
    else:
        assert "left out: nginx" in report, report
