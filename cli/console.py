"""Keep tracebacks off the console during a CLI run; ZenML's stored logs keep them in full."""

from __future__ import annotations

import logging


class _WithoutTraceback(logging.Formatter):
    """Formats a record as `inner` does, minus its traceback (restored afterwards for the other handlers)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = saved


def hide_console_tracebacks() -> None:
    """Wrap the formatter of ZenML's console handler; its log-storage handler still records every traceback."""
    from zenml.logger import ZenMLConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, ZenMLConsoleHandler) and not isinstance(handler.formatter, _WithoutTraceback):
            handler.setFormatter(_WithoutTraceback(handler.formatter))
