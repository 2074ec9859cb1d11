"""zstd frame boundaries (RFC 8878) followed without decoding: the zstd decoder stops quietly when its input ends
mid-frame, this walker tells a complete stream from a truncated one."""

from __future__ import annotations

from .checksums import corrupt_payload

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ZstdFrames:
    """Follows zstd frame boundaries (RFC 8878) in a stream without decoding, to detect truncation.

    The zstd decoder stops quietly when its input ends mid-frame; this walker knows whether the last frame
    (blocks and content checksum) was complete.
    """

    def __init__(self, where: str):
        self.where = where
        self.state = "magic"
        self.need = 4
        self.buf = bytearray()
        self.skip = 0
        self.frames = 0
        self.has_checksum = False

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        i, n = 0, len(view)
        while i < n:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                continue
            take = min(self.need - len(self.buf), n - i)
            self.buf += view[i : i + take]
            i += take
            if len(self.buf) == self.need:
                field = bytes(self.buf)
                self.buf.clear()
                self._advance(field)

    def _expect(self, state: str, need: int) -> None:
        self.state, self.need = state, need

    def _advance(self, field: bytes) -> None:
        if self.state == "magic":
            if field == ZSTD_MAGIC:
                self._expect("descriptor", 1)
            elif field[1:] == b"\x2a\x4d\x18" and field[0] & 0xF0 == 0x50:
                self._expect("skippable", 4)
            elif not self.frames:
                raise corrupt_payload(self.where, "zstd magic bytes are damaged")
            else:
                raise corrupt_payload(self.where, "bytes after a zstd frame are not another frame")
        elif self.state == "skippable":
            self.skip = int.from_bytes(field, "little")
            self._expect("magic", 4)
        elif self.state == "descriptor":
            fhd = field[0]
            if fhd & 0x08:
                raise corrupt_payload(self.where, "zstd frame header has its reserved bit set")
            single_segment = (fhd >> 5) & 1
            fcs_flag = fhd >> 6
            fcs_size = (single_segment, 2, 4, 8)[fcs_flag]
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 3] + fcs_size
            self.has_checksum = bool((fhd >> 2) & 1)
            if rest:
                self._expect("header", rest)
            else:
                self._expect("block", 3)
        elif self.state == "header":
            self._expect("block", 3)
        elif self.state == "block":
            header = int.from_bytes(field, "little")
            last, block_type, size = header & 1, (header >> 1) & 3, header >> 3
            if block_type == 3:
                raise corrupt_payload(self.where, "zstd block has the reserved type")
            self.skip = 1 if block_type == 1 else size
            if not last:
                self._expect("block", 3)
            elif self.has_checksum:
                self._expect("checksum", 4)
            else:
                self._end_frame()
        elif self.state == "checksum":
            self._end_frame()

    def _end_frame(self) -> None:
        self.frames += 1
        self._expect("magic", 4)

    def finish(self) -> None:
        if self.state != "magic" or self.buf or self.skip or not self.frames:
            raise corrupt_payload(self.where, "zstd stream ends inside a frame (truncated)")
