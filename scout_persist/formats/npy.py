"""``npy``: a numpy array as NPY.

NPY holds C- or Fortran-ordered data: a C- or Fortran-contiguous array comes back in its own layout; a strided view
(``a[::2]``, a transpose of a 3-d array) is stored as, and handed on as, its C-contiguous copy, and a read-only array
as its writable copy: loads are writable, so the first run hands on what every load gives back.  Arrays of Python
objects (``dtype=object``, or structured dtypes holding them) are not NPY data: chosen by type they are pickled,
asked for they are refused; so are subclasses (masked arrays, ``np.matrix``, memory maps), which NPY would turn
into plain arrays.

Uncompressed (``compression="none"``) the result file *is* a ``.npy`` file (``numpy.load(path)`` reads it); on a
local disk it is read as a private memory map, verified, and the array is a view of that map: no copy, writable
(copy on write: the file never changes).  Compressed, the payload is the codec's encoding of the array's bytes and
the NPY header is kept in the record; it decodes into one new buffer that only the array uses.

Record: ``{"format": "npy", "version": 1, "codec": "none"|"zstd", "level", "header": <NPY header, base64>,
"size": <array bytes>, "stored_size", "checksum"}``.  Uncompressed, the file starts with exactly the recorded
header and the checksum covers the bytes after it (so the array's memory is hashed in place, never joined to
its header in memory); compressed, the checksum covers the whole payload.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

from ..checksums import checksum
from ..errors import CorruptPayloadError, UnsupportedValueError
from ..zstd_codec import compress_with_record, decompress_into
from . import Format, Parts, Stored, compression, loaded, verify_whole


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


class Npy(Format):
    name = "npy"
    version = 1
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
        codec, _level = compression(spec)
        record: dict[str, Any] = {"header": base64.b64encode(header).decode("ascii"), "size": body.nbytes}
        data: Parts | bytes
        if codec == "none":
            data = Parts((header, body))
            record.update(codec="none", level=None, stored_size=len(header) + body.nbytes, checksum=checksum(body))
        else:
            data, crec = compress_with_record(body, spec)
            record.update(codec=crec["codec"], level=crec["level"], stored_size=len(data), checksum=checksum(data))
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
        count = 1
        for n in shape:
            count *= int(n)
        if record.get("codec") == "none":
            body = memoryview(data)[len(header) :]
        else:
            body = decompress_into(data, int(record.get("size") or 0), where)
        if body.nbytes != count * dtype.itemsize:
            raise CorruptPayloadError(
                f"{where}: {body.nbytes} bytes of array data where shape {shape} of {dtype} needs "
                f"{count * dtype.itemsize}"
            )
        flat = np.frombuffer(body, dtype=dtype, count=count) if count else np.empty(0, dtype=dtype)
        arr = flat.reshape(shape, order="F" if fortran else "C")
        if not arr.flags.writeable:  # bytes handed in by a caller: the array must be as writable as the original
            arr = arr.copy(order="F" if fortran else "C")
        return arr

    def maps(self, record: Mapping[str, Any]) -> bool:
        return record.get("codec") == "none"

    def writable(self, record: Mapping[str, Any]) -> bool:
        return record.get("codec") == "none"


FORMAT = Npy()
