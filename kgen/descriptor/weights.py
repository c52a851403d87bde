"""Weights as binary shards of at most 4 MiB, in one of three encodings.

- ``fp32``: little-endian float32.
- ``fp16``: little-endian IEEE half floats (decoded in the page).
- ``eightbit``: blocks of 256 values, each a float32 scale (the block's largest magnitude / 127) followed by
  int8 codes (value = code * scale). About 0.254x the size of fp32; WebDNN's eightbit is about 1/5 after zlib.

Every tensor's encoded bytes start on a 4-byte boundary of one stream that the shards split; a tensor may span
shards, and the page joins them before decoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgen.errors import KgenError

ENCODINGS = ("fp32", "fp16", "eightbit")
SHARD_BYTES = 4 << 20
BLOCK = 256


@dataclass(frozen=True)
class Encoded:
    entries: list[dict[str, Any]]  # per tensor: name, shape, offset, bytes
    shards: list[bytes]

    @property
    def nbytes(self) -> int:
        return sum(len(s) for s in self.shards)


def encode_tensor(array: np.ndarray, encoding: str) -> bytes:
    flat = np.ascontiguousarray(array, dtype=np.float32).ravel()
    if encoding == "fp32":
        return flat.astype("<f4").tobytes()
    if encoding == "fp16":
        return flat.astype("<f2").tobytes()
    if encoding == "eightbit":
        blocks = -(-flat.size // BLOCK)
        padded = np.zeros(blocks * BLOCK, np.float32)
        padded[: flat.size] = flat
        padded = padded.reshape(blocks, BLOCK)
        scales = (np.abs(padded).max(axis=1) / 127.0).astype(np.float32)
        safe = np.where(scales > 0, scales, 1.0)
        codes = np.clip(np.rint(padded / safe[:, None]), -127, 127).astype(np.int8).ravel()[: flat.size]
        return scales.astype("<f4").tobytes() + codes.tobytes()
    raise KgenError(f"unknown weight encoding '{encoding}' (encodings: {', '.join(ENCODINGS)})")


def decode_tensor(data: bytes, size: int, encoding: str) -> np.ndarray:
    """The float32 values of one encoded tensor (what the page decodes); a length that does not add up is an
    error."""
    expected = encoded_bytes(size, encoding)
    if len(data) != expected:
        raise KgenError(f"weights: an {encoding} tensor of {size} values needs {expected} bytes, got {len(data)}")
    if encoding == "fp32":
        return np.frombuffer(data, "<f4").astype(np.float32)
    if encoding == "fp16":
        return np.frombuffer(data, "<f2").astype(np.float32)
    blocks = -(-size // BLOCK)
    scales = np.frombuffer(data[: 4 * blocks], "<f4")
    codes = np.frombuffer(data[4 * blocks :], np.int8).astype(np.float32)
    return codes * np.repeat(scales, BLOCK)[:size]


def encoded_bytes(size: int, encoding: str) -> int:
    if encoding == "fp32":
        return 4 * size
    if encoding == "fp16":
        return 2 * size
    return 4 * -(-size // BLOCK) + size


def encode(constants: Mapping[str, np.ndarray], encoding: str, shard_bytes: int = SHARD_BYTES) -> Encoded:
    """Every constant in order, in one stream cut into shards."""
    stream = bytearray()
    entries = []
    for name, array in constants.items():
        data = encode_tensor(array, encoding)
        entries.append({"name": name, "shape": list(array.shape), "offset": len(stream), "bytes": len(data)})
        stream += data
        stream += b"\0" * (-len(stream) % 4)
    shards = [bytes(stream[k : k + shard_bytes]) for k in range(0, len(stream), shard_bytes)] or [b""]
    return Encoded(entries, shards)


def decode(entries: list[dict[str, Any]], shards: list[bytes], encoding: str) -> dict[str, np.ndarray]:
    stream = b"".join(shards)
    out = {}
    for e in entries:
        size = int(np.prod(e["shape"], dtype=np.int64))
        data = stream[e["offset"] : e["offset"] + e["bytes"]]
        out[e["name"]] = decode_tensor(data, size, encoding).reshape(e["shape"])
    return out


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
