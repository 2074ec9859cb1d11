"""``npy``: a numpy array as NPY.

NPY holds C- or Fortran-ordered data: a C- or Fortran-contiguous array comes back in its own layout; a strided view
(``a[::2]``, a transpose of a 3-d array) is stored as, and handed on as, its C-contiguous copy, and a read-only array
as its writable copy: loads are writable, so the first run hands on what every load gives back.  Arrays of Python
objects (``dtype=object``, or structured dtypes holding them) are not NPY data: chosen by type they are pickled,
asked for they are refused; so are subclasses (masked arrays, ``np.matrix``, memory maps), which NPY would turn
into plain arrays.

Uncompressed (``compression="none"``) the result file *is* a ``.npy`` file (``numpy.load(path)`` reads it); on a
local disk it is read as a private memory map, verified, and the array is a view of that map: no copy, writable
(copy on write: the file never changes).  ``auto`` stores the same plain file for an array that does not compress
(less than 4 KiB, or a first chunk that shrinks by less than a tenth: random data).

Compressed (version 2), the payload is the array's bytes as the chunks of one part of
:mod:`scout_persist.envelope_parts`, encoded on all cores: under ``auto``, Blosc2 (a bit-shuffle by item size, then
its codec) for arrays of Blosc2's break-even size or more, independent zstd:3 frames below it (Blosc2 is imported
only then); ``zstd:<level>`` frames when asked.  The NPY header stays in the record.  A load makes the array with
``numpy.empty`` and decodes the chunks straight into its memory: the array owns its data, nothing is copied after.

Record: ``{"format": "npy", "version": 1|2, "header": <NPY header, base64>, "size": <array bytes>, "codec",
"stored_size", "checksum"}``; version 1 plain: ``"codec": "none"``, the file starts with exactly the recorded header
and the checksum covers the bytes after it (so the array's memory is hashed in place, never joined to its header
in memory); version 2: ``"codec"`` names the part's codec with its parameters (``blosc2:lz4:5:bitshuffle:8``,
``zstd:3``), ``"parts"`` is the envelope-parts header of the one part (codec, size, chunk, stored size of each
chunk), and the checksum covers the stored chunks, hashed as they are encoded.  Version 1 compressed records
(``"codec": "zstd"``, one zstd frame of the array's bytes, written before version 2) still load.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

from ..checksums import checksum_algorithm, new_checksum
from ..codec_spec import parse_spec
from ..envelope_parts import decode_parts, encode_parts
from ..errors import CorruptPayloadError, UnsupportedValueError
from ..zstd_codec import zstd_into
from . import Format, Parts, Stored, loaded, nbytes, stored_pieces, verify_whole

PLAIN_VERSION = 1  # the plain .npy file (and, read only, one zstd frame of the array's bytes)
PARTS_VERSION = 2  # the array's bytes as the chunks of one envelope part


def _header(np: Any, arr: Any) -> bytes:
    fmt = np.lib.format
    d = fmt.header_data_from_array_1_0(arr)
    buf = io.BytesIO()
    try:
        fmt.write_array_header_1_0(buf, d)
    except ValueError:  # a header over 64 KiB (huge structured dtypes)
        buf = io.BytesIO()
        fmt.write_array_header_2_0(buf, d)
    return buf.getvalue()


def _parse_header(np: Any, header: bytes, where: str) -> tuple[tuple[Any, ...], bool, Any]:
    fmt = np.lib.format
    fh = io.BytesIO(header)
    try:
        major, _minor = fmt.read_magic(fh)
        reader = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(fh)
    except (ValueError, OSError) as exc:
        raise CorruptPayloadError(f"{where}: the NPY header in its .info is damaged ({exc})") from exc
    return shape, fortran, dtype


def _refusal(np: Any, value: Any) -> str | None:
    """Why NPY cannot hold ``value`` exactly (None: it can)."""
    if type(value) is not np.ndarray:
        return (
            "npy holds numpy.ndarray values (not subclasses such as masked arrays, which it would turn into plain "
            "arrays); convert it with numpy.asarray(...)"
        )
    if value.dtype.hasobject:
        return "npy holds arrays without Python objects (dtype=object); convert it to a numeric or str dtype"
    if value.dtype.metadata is not None:
        return "npy does not keep dtype metadata; drop it (arr.astype(arr.dtype.str))"
    names = _field_names(value.dtype)
    if not all(n.isascii() for n in names):  # the NPY header this reader and numpy < 2 agree on is Latin-1 text
        return f"npy headers are ASCII, and the field names {[n for n in names if not n.isascii()]!r:.60} are not"
    return None


def _field_names(dtype: Any) -> list[str]:
    """Every field name of a structured dtype, nested ones included (titles too: the header holds them)."""
    if dtype.fields is None:
        return _field_names(dtype.subdtype[0]) if dtype.subdtype else []
    names: list[str] = []
    for name, spec in dtype.fields.items():
        names.append(str(name))
        names.extend(_field_names(spec[0]))
    return names


def _count(shape: tuple[Any, ...]) -> int:
    count = 1
    for n in shape:
        count *= int(n)
    return count


class Npy(Format):
    name = "npy"
    version = PARTS_VERSION
    libraries = ("numpy",)

    def can_encode(self, value: Any) -> bool:
        np = loaded("numpy")
        return np is not None and _refusal(np, value) is None

    def encode(self, value: Any, spec: str | None, where: str) -> Stored:

        np = self.require("numpy", "storing an array", where)
        why = _refusal(np, value)
        if why is not None:
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as npy: {why}; or declare format='pickle'"
            )
        arr = value
        if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
            arr = np.ascontiguousarray(arr)  # a strided view: its elements are gathered once, in C order
        elif not arr.flags.writeable:
            arr = arr.copy(order="K")  # a load is writable: so is what the first run hands on
        fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous
        header = _header(np, arr)
        body = memoryview((arr.T if fortran else arr).reshape(-1).view(np.uint8))
        record: dict[str, Any] = {"header": base64.b64encode(header).decode("ascii"), "size": body.nbytes}
        digest = new_checksum(size_hint=body.nbytes)
        parts = None if parse_spec(spec)[0] == "none" else encode_parts([body], [arr.dtype.itemsize], spec, digest)
        data: bytes | Parts
        if parts is None or parts.codec == "none":  # asked for, or nothing to gain: the plain .npy file
            if parts is None:
                digest.update(body)  # (the plain part's pieces are the body: hashed already)
            data = Parts((header, body))
            record.update(version=PLAIN_VERSION, codec="none", level=None, stored_size=len(header) + body.nbytes)
        else:
            data = stored_pieces(parts.pieces)
            record.update(version=PARTS_VERSION, codec=parts.codec, parts=parts.header, stored_size=nbytes(data))
        record["checksum"] = f"{checksum_algorithm()}:{digest.hexdigest()}"
        # a load gives back this array's dtype, shape, values and layout, writable: hand on this very array (the
        # value itself when it is contiguous and writable already)
        return Stored(data, record, arr)

    def _header_of(self, record: Mapping[str, Any], where: str) -> bytes:
        try:
            return base64.b64decode(str(record["header"]), validate=True)
        except (KeyError, ValueError) as exc:
            raise CorruptPayloadError(f"{where}: its .info has no readable NPY header ({exc})") from exc

    def verify(self, data: Any, record: Mapping[str, Any], where: str) -> None:
        if record.get("codec") != "none":
            verify_whole(data, record, where)
            return
        header = self._header_of(record, where)
        view = memoryview(data)
        if view[: len(header)] != header:
            raise CorruptPayloadError(
                f"{where} does not start with the NPY header its .info records: damaged, tampered or replaced"
            )
        verify_whole(data, record, where, offset=len(header))

    def decode(self, data: Any, record: Mapping[str, Any], where: str) -> Any:
        np = self.require("numpy", "reading an array stored", where)
        header = self._header_of(record, where)
        shape, fortran, dtype = _parse_header(np, header, where)
        order = "F" if fortran else "C"
        if record.get("codec") == "none":
            body = memoryview(data)[len(header) :]
            count = _count(shape)
            if body.nbytes != count * dtype.itemsize:
                raise CorruptPayloadError(
                    f"{where}: {body.nbytes} bytes of array data where shape {shape} of {dtype} needs "
                    f"{count * dtype.itemsize}"
                )
            flat = np.frombuffer(body, dtype=dtype, count=count) if count else np.empty(0, dtype=dtype)
            arr = flat.reshape(shape, order=order)
            if not arr.flags.writeable:  # bytes handed in by a caller: the array must be as writable as the original
                arr = arr.copy(order=order)
            return arr
        if dtype.hasobject:  # never written (refused by encode): raw bytes are no Python objects
            raise CorruptPayloadError(f"{where}: its .info records an NPY header of Python objects ({dtype})")
        # compressed: the array is made first and its own memory is the decoder's destination
        arr = np.empty(shape, dtype=dtype, order=order)
        dst = memoryview((arr.T if fortran else arr).reshape(-1).view(np.uint8))
        if record.get("size") != dst.nbytes:
            raise CorruptPayloadError(
                f"{where}: its .info records {record.get('size')!r} bytes of array data where shape {shape} of "
                f"{dtype} needs {dst.nbytes}"
            )
        if "parts" in record:
            decode_parts(record["parts"], data, where, into=[dst])
        else:  # version 1: one zstd frame
            zstd_into(memoryview(data), dst, where)
        return arr

    def maps(self, record: Mapping[str, Any]) -> bool:
        return record.get("codec") == "none"

    def writable(self, record: Mapping[str, Any]) -> bool:
        return record.get("codec") == "none"


FORMAT = Npy()
