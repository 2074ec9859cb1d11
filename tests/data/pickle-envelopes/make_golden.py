"""How the golden payloads beside this file were made: run once with scout-persist at commit 84ac831 (envelope
version 2 writer, sha256 records), from the repository root:

    PYTHONPATH=.:integrations python tests/data/pickle-envelopes/make_golden.py

Kept for the record only: today's code writes version 3, so rerunning it now would not reproduce these bytes.
The tests read the files as they are (tests/test_serializers.py, tests/test_codecs.py).
"""

import json
import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np

from scout_persist import codecs
from scout_persist import serializers as S

HERE = Path(__file__).resolve().parent


def golden_value():
    """The value every pickle golden file holds (also rebuilt by the tests)."""
    return {
        "codes": (np.arange(4096, dtype=np.int64) // 7) % 100,
        "floats": np.linspace(0.0, 1.0, 257),
        "frac": Fraction(2, 7),
        "text": "golden payload " * 20,
    }


def write(name: str, data: bytes, record: dict | None) -> None:
    (HERE / f"{name}.bin").write_bytes(data)
    if record is not None:
        (HERE / f"{name}.record.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def main() -> None:
    value = golden_value()
    for spec in ("zstd:3", "none"):
        data, record = S.dump_pickle_with_record(value, spec, hmac_key=b"")
        write(f"v2-{spec.replace(':', '')}", data, record)
    data, record = S.dump_pickle_with_record(value, "zstd:3", hmac_key=b"golden-key")
    write("v2-zstd3-hmac", data, record)
    body = codecs.compress(pickle.dumps({"legacy": True}, protocol=5), "zstd:3")
    write("v1-zstd3", S.PICKLE_MAGIC_V1 + bytes([0]) + body, None)
    text = b"".join(b"line %d of a stream payload\n" % i for i in range(2000))
    stored, record = codecs.compress_with_record(text, "zstd:3")
    write("stream-zstd3", stored, record)


if __name__ == "__main__":
    main()
