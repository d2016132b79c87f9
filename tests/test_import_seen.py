"""store/import_seen.py: the slip keys an import has met, on disk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opd_fallback.store.import_seen import SeenKeys


def test_keys_keep_their_first_line_and_are_found_past_one_query_s_chunk() -> None:
    seen = SeenKeys()
    try:
        seen.add([(f"C07\x1f2026-11-20\x1f{i}", i + 2) for i in range(1200)])
        seen.add([("C07\x1f2026-11-20\x1f5", 9999), ("C07\x1f2026-11-21\x1f5", 1300)])
        asked = [f"C07\x1f2026-11-20\x1f{i}" for i in range(0, 1500, 7)] + ["C07\x1f2026-11-21\x1f5"]
        found = seen.lines_of(asked)
        assert found == {**{f"C07\x1f2026-11-20\x1f{i}": i + 2 for i in range(0, 1200, 7)},
                         "C07\x1f2026-11-21\x1f5": 1300}
        assert seen.lines_of(["C07\x1f2026-11-20\x1f5"]) == {"C07\x1f2026-11-20\x1f5": 7}  # the first line
        assert seen.lines_of([]) == {}
    finally:
        seen.close()


def _rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_the_keys_live_in_a_file_not_in_memory() -> None:
    """Memory bounded by the page cache (2 MB), not by the keys: 400,000 keys (held
    in memory by SQLite they take about 15 MB) leave the process's memory as it was."""
    seen = SeenKeys()
    try:
        seen.add([(f"C07\x1f2026-11-20\x1f{i}", i) for i in range(20_000)])
        before = _rss_mb()
        for start in range(20_000, 400_000, 20_000):
            seen.add([(f"C07\x1f2026-11-20\x1f{i}", i) for i in range(start, start + 20_000)])
        grew = _rss_mb() - before
        assert grew < 6, f"{grew:.1f} MB more for 380,000 keys"
        assert seen.lines_of(["C07\x1f2026-11-20\x1f399999"]) == {"C07\x1f2026-11-20\x1f399999": 399999}
    finally:
        seen.close()
