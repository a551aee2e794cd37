"""Hostile videos drawn at test time (nothing downloaded): each is a kind of file a service meets in the wild.

Each function writes one file and returns its path. They are examples of the rule the video path keeps (any file,
any container or codec PyAV reads, gets a clear refusal with bounded memory), not the rule itself.
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def one_colour_png(width: int, height: int) -> bytes:
    """An RGB PNG of `width` x `height` black pixels, compressed row by row (the raw image is never in memory):
    12000 x 12000 is ~420 KB on disk and 432 MB decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes(3 * width)  # filter byte, then the row
    parts = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def lying_dimensions(path: Path, real_side: int = 12000, frames: int = 2) -> Path:
    """A MOV whose header says 64x64 PNG frames, holding `real_side` x `real_side` ones: FFmpeg decodes the first
    while probing, before any header check of ours could run."""
    big = one_colour_png(real_side, real_side)
    with av.open(str(path), "w", format="mov") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "rgb24"
        for index in range(frames):
            packet = av.Packet(big)
            packet.stream, packet.pts, packet.dts = stream, index, index
            packet.time_base = Fraction(1, 1)
            packet.is_keyframe = True
            container.mux(packet)
    return path


def tagged_video(path: Path, container_format: str, title: bytes, frames: int = 6) -> Path:
    """A small video whose title tag holds `title` as raw bytes (Latin-1 from an old camera: not UTF-8). The tag is
    written as a same-length ASCII placeholder, then replaced in the file's bytes."""
    placeholder = b"T" * len(title)
    with av.open(str(path), "w", format=container_format) as container:
        container.metadata["title"] = placeholder.decode()
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(frames):
            image = np.full((32, 32, 3), index * 30, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    assert data.count(placeholder) == 1, "the placeholder must occur once"
    path.write_bytes(data.replace(placeholder, title))
    return path


def many_frames(path: Path, frames: int, side: int = 16, codec: str = "mpeg4", fps: int = 25) -> Path:
    """An MP4 of `frames` tiny frames at `fps`: small on disk, every frame still decoded."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")
        for _ in range(frames):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncated(path: Path, source: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def hls_playlist(path: Path) -> Path:
    """An HLS playlist named like a video: FFmpeg would follow its segment URLs if the container were not checked."""
    path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/segment.ts\n#EXT-X-ENDLIST\n")
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path
