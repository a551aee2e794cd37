"""Turn a table-like artifact (pydantic rows, a list of dicts, a dict per format) into a DataFrame for display."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel


def as_frame(table: Any) -> pd.DataFrame:
    """Rows of `table` as a DataFrame; a model holding a list of rows shows those rows, a dict of dicts one row each."""
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, BaseModel):
        data = table.model_dump(mode="json")
        rows = next((value for value in data.values() if _is_rows(value)), None)
        return pd.DataFrame(rows) if rows is not None else pd.DataFrame([data])
    if isinstance(table, dict):
        if table and all(isinstance(value, dict) for value in table.values()):
            return pd.DataFrame.from_dict(table, orient="index").reset_index(names="format")
        return pd.DataFrame([table])
    if isinstance(table, list | tuple):
        return pd.DataFrame([row.model_dump(mode="json") if isinstance(row, BaseModel) else row for row in table])
    return pd.DataFrame({"value": [str(table)]})


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)
