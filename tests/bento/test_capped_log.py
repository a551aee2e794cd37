"""The records' bounded disk (bento/capped_log.py), without a server: rotation at a file size, closed files named by
time, and a total cap that deletes the oldest first, every worker's files included."""

from __future__ import annotations

from pathlib import Path

import pytest

from bento.capped_log import CappedLog
from har_core.runtime.serve_records import is_live, record_files

LINE = 100  # bytes per line written below, newline included


def _line(number: int) -> str:
    return f"{number:09d}".ljust(LINE - 1, "x")


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


def _numbers(folder: Path) -> list[int]:
    return [int(line[:9]) for path in record_files(folder) for line in path.read_text().splitlines()]


def test_a_file_is_closed_before_it_grows_past_its_size_and_named_by_the_time_it_closed(tmp_path):
    log = CappedLog(tmp_path, worker=1, max_file_bytes=10 * LINE, max_total_bytes=100 * LINE)
    log.write([_line(n) for n in range(25)])
    files = record_files(tmp_path)
    assert [path.name for path in files if is_live(path)] == ["live.1.jsonl"]
    closed = [path for path in files if not is_live(path)]
    assert len(closed) == 2 and all(path.stat().st_size == 10 * LINE for path in closed)
    assert all(path.name.endswith("Z.1.jsonl") and len(path.name.split(".")[0]) == 22 for path in closed)
    assert _numbers(tmp_path) == list(range(25))  # closed oldest first, then the live file: the order written


def test_the_total_stays_under_the_cap_and_the_oldest_lines_go_first(tmp_path):
    cap = 50 * LINE
    log = CappedLog(tmp_path, worker=1, max_file_bytes=10 * LINE, max_total_bytes=cap)
    for number in range(400):
        log.write([_line(number)])
        assert _folder_bytes(tmp_path) <= cap
    kept = _numbers(tmp_path)
    assert kept == list(range(kept[0], 400))  # what is left is the newest lines, none missing in between
    assert len(kept) >= 40  # four closed files beside the live one's full allowance


def test_every_worker_counts_and_the_oldest_file_of_any_worker_goes_first(tmp_path):
    cap = 60 * LINE
    logs = [CappedLog(tmp_path, worker, max_file_bytes=10 * LINE, max_total_bytes=cap) for worker in (1, 2)]
    for number in range(300):
        logs[number % 2].write([_line(number)])
        assert _folder_bytes(tmp_path) <= cap
    kept = _numbers(tmp_path)
    evens, odds = sorted(n for n in kept if n % 2 == 0), sorted(n for n in kept if n % 2)
    assert evens == list(range(evens[0], 300, 2)) and odds == list(range(odds[0], 300, 2))  # newest of each
    assert abs(evens[0] - odds[0]) <= 2 * 10  # the oldest file of either went first: their oldest kept are a file apart
    assert {path.name for path in record_files(tmp_path) if is_live(path)} == {"live.1.jsonl", "live.2.jsonl"}


def test_a_restart_with_a_smaller_cap_trims_what_it_finds(tmp_path):
    large = CappedLog(tmp_path, worker=1, max_file_bytes=10 * LINE, max_total_bytes=200 * LINE)
    large.write([_line(n) for n in range(150)])
    large.close()
    small = CappedLog(tmp_path, worker=1, max_file_bytes=10 * LINE, max_total_bytes=40 * LINE)
    assert _folder_bytes(tmp_path) <= 40 * LINE
    small.write([_line(150)])
    assert _numbers(tmp_path)[-1] == 150 and _numbers(tmp_path)[-2] == 149  # the restarted worker appends


def test_a_line_larger_than_a_file_gets_a_file_of_its_own(tmp_path):
    log = CappedLog(tmp_path, worker=1, max_file_bytes=10 * LINE, max_total_bytes=100 * LINE)
    log.write([_line(0), "y" * (30 * LINE), _line(1)])
    sizes = [path.stat().st_size for path in record_files(tmp_path)]
    assert sizes == [LINE, 30 * LINE + 1, LINE]


def test_a_cap_below_two_files_is_refused(tmp_path):
    with pytest.raises(ValueError, match="max_total_bytes"):
        CappedLog(tmp_path, worker=1, max_file_bytes=10 * LINE, max_total_bytes=15 * LINE)
