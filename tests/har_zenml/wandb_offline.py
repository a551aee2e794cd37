"""Read an offline W&B run directory with W&B's own record format (`wandb.proto.wandb_internal_pb2.Record`).

An offline run keeps everything in `run-<id>.wandb`: a LevelDB-style log (7-byte `:W&B` header, 32 KiB blocks,
records split into FULL/FIRST/MIDDLE/LAST chunks) of protobuf records. wandb 0.31 ships no Python reader for it
(`wandb sync` is Go), so this is the smallest one that gives config, summary and history back.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

HEADER_SIZE = 7
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = 7  # crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _records(path: Path):
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    position, pending = HEADER_SIZE, b""
    while position + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER:  # block trailer padding
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + CHUNK_HEADER])
        chunk = data[position + CHUNK_HEADER : position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            break
        if kind in (FULL, FIRST):
            pending = chunk
        else:
            pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Config, summary and history rows logged to the offline run in `run_dir` (`.../wandb/offline-run-*`)."""
    (log,) = Path(run_dir).glob("run-*.wandb")
    run = OfflineRun()
    for record in _records(log):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            for item in record.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                run.summary[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            run.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "files":
            run.files += [item.path for item in record.files.files]
        elif kind == "run":
            for item in record.run.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
    return run
