"""A worker's record file on bounded disk: appended to, closed at a size, and the oldest closed files deleted.

BentoML's default monitor writes through a `TimedRotatingFileHandler` with no `backupCount`: a new file a day, none
ever deleted. Here the live file (`live.<worker>.jsonl`) is closed when the next line would take it past
`max_file_bytes`, renamed by the time it was closed (`har_core.runtime.serve_records` lays the names out), and
closed files are deleted oldest first, every worker's included, until the closed ones and every live file counted
at its full size fit in `max_total_bytes`. So the folder never holds more than `max_total_bytes`, as long as no
single line is larger than a file (such a line gets a file of its own).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from har_core.runtime.serve_records import closed_file, is_live, live_file, record_files

logger = logging.getLogger(__name__)


class CappedLog:
    """One worker's appender; safe to share between threads."""

    def __init__(self, folder: Path, worker: int, max_file_bytes: int, max_total_bytes: int) -> None:
        if max_total_bytes < 2 * max_file_bytes:
            raise ValueError(f"max_total_bytes ({max_total_bytes}) must hold a live and a closed file of "
                             f"max_file_bytes ({max_file_bytes}).")  # fmt: skip
        self.folder, self.worker = folder, worker
        self.max_file_bytes, self.max_total_bytes = max_file_bytes, max_total_bytes
        self.path = live_file(folder, worker)
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")  # a restarted worker appends to the file it left
        self.prune()  # a restart may find a folder filled under larger limits

    def write(self, lines: list[str]) -> None:
        """Append each line (no newline in it), closing the live file first wherever it would grow past its size."""
        with self._lock:
            for line in lines:
                data = line.encode("utf-8") + b"\n"
                size = self._file.tell()
                if size and size + len(data) > self.max_file_bytes:
                    self._close_live_file()
                self._file.write(data)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def prune(self) -> list[Path]:
        """Delete closed files, oldest first, until they fit beside the live files at their full size; the deleted."""
        files = record_files(self.folder)
        closed = [path for path in files if not is_live(path)]
        budget = self.max_total_bytes - sum(is_live(path) for path in files) * self.max_file_bytes
        sizes = {path: _size(path) for path in closed}
        total = sum(sizes.values())
        deleted = []
        for path in closed:  # oldest first
            if total <= budget:
                break
            path.unlink(missing_ok=True)  # another worker may have deleted it first
            total -= sizes[path]
            deleted.append(path)
        return deleted

    def _close_live_file(self) -> None:
        self._file.close()
        target = closed_file(self.folder, self.worker, datetime.now(UTC))
        while target.exists():  # two closes within a microsecond
            time.sleep(1e-6)
            target = closed_file(self.folder, self.worker, datetime.now(UTC))
        self.path.rename(target)
        self._file = self.path.open("ab")
        deleted = self.prune()
        if deleted:
            logger.debug("Records over their cap: deleted %s", ", ".join(path.name for path in deleted))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
