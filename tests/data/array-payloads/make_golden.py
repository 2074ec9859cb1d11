"""How the golden payloads beside this file were made: run once with scout-persist at commit 2d0e214 (NPY and
safetensors version 1: a compressed payload is one zstd frame of the array's bytes, or of the .safetensors file),
from the repository root of that commit:

    PYTHONPATH=.:integrations python tests/data/array-payloads/make_golden.py

Kept for the record only: today's code writes version 2 (envelope parts), so rerunning it now would not reproduce
these bytes.  The tests read the files as they are (tests/test_formats.py).
"""

import json
from pathlib import Path

import numpy as np

from scout_persist import payload

HERE = Path(__file__).resolve().parent
KEY = "var/jobs/Golden/arrays/Default"


def golden_values() -> dict:
    """The values of the golden files (also rebuilt by the tests)."""
    codes = (np.arange(30_000, dtype=np.int64) // 64) % 500
    return {
        "npy-v1-zstd3": np.asfortranarray(codes.reshape(150, 200)),
        "npy-v1-zstd3-bigendian": codes[:999].astype(">u2"),
        "npy-v1-zstd3-empty": np.zeros((0, 4), dtype=np.float32),
        "safetensors-v1-zstd3": {"w": codes.astype(np.float32).reshape(300, 100), "b": np.arange(7, dtype=np.int8)},
    }


def main() -> None:
    for name, value in golden_values().items():
        enc = payload.encode(value, None, key=KEY, compression="zstd:3")
        assert enc.record["version"] == 1 and enc.record["codec"] == "zstd"
        (HERE / f"{name}.bin").write_bytes(bytes(payload.joined(enc.data)))
        (HERE / f"{name}.record.json").write_text(json.dumps(enc.record, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
