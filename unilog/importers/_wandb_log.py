"""The records of a wandb transaction log (``run-<id>.wandb``), for the importer.

wandb 0.31 has no Python reader for its own log: the SDK's ``DataStore`` went
away when the writing moved into the ``wandb-core`` Go service, and the one
reader wandb ships, ``wandb leet inspect --json``, renders records lossily (a
nested key ``{"x": {"y": 1}}`` and a key ``"x.y"`` print alike, so one
overwrites the other; NaN prints as the string ``"NaN"``). So the framing is
read here, and every record is decoded by wandb's own protobuf class,
``wandb.proto.wandb_internal_pb2.Record``: nothing of a record's content is
parsed by hand.

The framing is LevelDB's log format behind a 7-byte file header (``:W&B``, the
magic 0xBEE1, version 0): 32 KiB blocks of chunks, each with a 7-byte header
``<IHB`` (CRC-32 of the type byte and the data, length, type: 1 a whole record,
2/3/4 the first/middle/last part of one split across blocks); a block's tail
shorter than a header is zero padding. Checksums are verified: damage is
reported (never skipped silently) and reading resumes at the next block, as
LevelDB's own reader does.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from unilog.errors import ConfigError

BLOCK = 32768
HEADER = struct.Struct("<IHB")
FILE_HEADER = struct.Struct("<4sHB")
IDENT, MAGIC, VERSION = b":W&B", 0xBEE1, 0
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
#: The CRC of each chunk type byte: the seed of that chunk's checksum.
_SEED = {kind: zlib.crc32(bytes([kind])) for kind in (FULL, FIRST, MIDDLE, LAST)}


def records(path: str | Path, damaged: Callable[[str], None]) -> Iterator[Any]:
    """Each ``Record`` of the ``.wandb`` file at ``path``, in order.

    ``damaged(what)`` is called for each unreadable stretch (a bad checksum, a
    record cut off by a crash); the records around it are still returned.
    """
    from wandb.proto.wandb_internal_pb2 import Record

    with open(path, "rb") as f:
        # Mapped, not read: a long run's log is hundreds of MB.
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if _size(f) else b""
    try:
        for payload in _payloads(data, path, damaged):
            record = Record()
            try:
                record.ParseFromString(payload)
            except Exception:  # protobuf's DecodeError: a record that passed its checksum
                damaged("undecodable record")
                continue
            yield record
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _size(f: Any) -> int:
    return os.fstat(f.fileno()).st_size


def _payloads(data: bytes, path: Any, damaged: Callable[[str], None]) -> Iterator[bytes]:
    _check_header(data, path)
    parts: list[bytes] | None = None  # the chunks of a record split across blocks
    for kind, chunk in _chunks(data, damaged):
        if kind == FULL or kind == FIRST:
            if parts is not None:
                damaged("record missing its last part")
            parts = None if kind == FULL else [chunk]
            if kind == FULL:
                yield chunk
        elif parts is None:
            damaged("record missing its first part")
        else:
            parts.append(chunk)
            if kind == LAST:
                yield b"".join(parts)
                parts = None
    if parts is not None:
        damaged("record cut off at the end of the file")


def _check_header(data: bytes, path: Any) -> None:
    if len(data) < FILE_HEADER.size:
        raise ConfigError(f"{path} is not a wandb run log (shorter than its header)")
    ident, magic, version = FILE_HEADER.unpack_from(data)
    if ident != IDENT or magic != MAGIC:
        raise ConfigError(f"{path} is not a wandb run log (no ':W&B' header)")
    if version != VERSION:
        raise ConfigError(f"{path} is a wandb run log of format version {version}; this "
                          f"unilog reads version {VERSION} (wandb 0.31)")


def _chunks(data: bytes, damaged: Callable[[str], None]) -> Iterator[tuple[int, bytes]]:
    pos, end = FILE_HEADER.size, len(data)
    while pos < end:
        room = BLOCK - pos % BLOCK
        if room < HEADER.size:  # the block's zero padding
            pos += room
            continue
        if pos + HEADER.size > end:
            damaged("chunk header cut off at the end of the file")
            return
        crc, length, kind = HEADER.unpack_from(data, pos)
        body = data[pos + HEADER.size:pos + HEADER.size + length]
        if kind == 0 and not data[pos:].strip(b"\0"):  # zeros to the end: space never written
            return
        if kind not in _SEED or length > room - HEADER.size or len(body) < length \
                or zlib.crc32(body, _SEED[kind]) != crc:
            damaged("chunk cut off at the end of the file" if pos + HEADER.size + length > end
                    else "chunk with a bad checksum (the rest of its block is skipped)")
            pos += room  # resynchronise at the next block, as LevelDB does
            continue
        yield kind, body
        pos += HEADER.size + length
