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


H2LOAD_OUT = """TLS Protocol: TLSv1.3
Application protocol: {protocol}

finished in 3.00s, 111858.50 req/s, 15.25MB/s
requests: 223717 total, 223720 started, 223717 done, 223712 succeeded, 5 failed, 2 errored, 0 timeout
status codes: 223712 2xx, 0 3xx, 3 4xx, 0 5xx
                     min         max         mean         sd        +/- sd
time for request:       44us     17.12ms      5.69ms       801us    95.94%
"""


def test_h2load_output_gives_rate_and_every_problem():
    sys.path.insert(0, str(ROOT / "bench"))
    from http2_case import parse_h2load

    load, spoken = parse_h2load(H2LOAD_OUT.format(protocol="h2"))
    assert (load.rate, load.requests, load.mean, spoken) == (111858.5, 223717, 5.69, "h2, TLSv1.3")
    assert load.problems == "5 failed, 2 errored, 0 timeout, non-2xx: 3 4xx"
    # A server that is not offering h2 is answered over HTTP/1.1 by h2load: flagged, not compared.
    load, spoken = parse_h2load(H2LOAD_OUT.format(protocol="http/1.1"))
    assert load.problems.endswith("spoke http/1.1, TLSv1.3, not h2"), load.problems
    with pytest.raises(RuntimeError, match="h2load printed no result"):
        parse_h2load("client could not connect to host\n")
