"""Stream files and messages: msgpack maps whose tensors are numpy arrays.

A myelin message is one msgpack map with a string ``kind``; a tensor is a
nested map ``{"dtype", "shape", "data"}`` (C order, little-endian; see the
repository's schemas/README.md). A stream file (.mpk) is a plain
concatenation of messages.

Reading turns every tensor map into a numpy array (read-only, a view of the
message bytes) and so drops the ``_pad`` key that aligns large payloads.
Writing does the reverse with the same layout as the runtime's message
builder (runtime/src/msg.c, put_tensor): a payload of 4 KiB or more starts at
a multiple of 64 bytes from the start of its message (a ``_pad`` bin of 0 to
63 zeros fills the gap; always present), a smaller one at a multiple of 8 (by
the choice of header widths, no extra key), so stages read what Python wrote
in place, as they read their own. In a stream file the large payloads start
on multiples of 64 bytes *of the file*, as file_sink writes them (it re-sizes
each ``_pad``, runtime/src/writer.c): write() passes each message's file
offset to pack(), so file_source maps the file and reads them in place.
"""
import os
import tempfile

import msgpack
import numpy as np

# The dtypes of DESIGN.md section 4 (numpy's spelling on a little-endian host).
DTYPES = ("<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1")
_TENSOR_KEYS = {"dtype", "shape", "data", "_pad"}
_MAX_MESSAGE = 1 << 31  # the runtime's default limit is 256 MiB; accept what it may be told to allow
PAD_MIN = 4096          # payloads from this size start on a 64-byte boundary
ALIGN = 64
SMALL_ALIGN = 8


# ---- reading -------------------------------------------------------------

def is_tensor(v):
    """True for a tensor map as it comes out of msgpack (before conversion)."""
    return (isinstance(v, dict) and "dtype" in v and "shape" in v and "data" in v
            and v.keys() <= _TENSOR_KEYS and isinstance(v["dtype"], str)
            and isinstance(v["data"], (bytes, bytearray, memoryview)))


def tensor_array(t):
    """A tensor map as a numpy array (a read-only view of its bytes)."""
    dt = np.dtype(t["dtype"])
    if dt.str not in DTYPES:
        raise ValueError("tensor dtype %r is not one of %s" % (t["dtype"], " ".join(DTYPES)))
    shape = tuple(int(d) for d in t["shape"])
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dt.itemsize != len(t["data"]):
        raise ValueError("tensor of dtype %s and shape %s needs %d bytes, its data has %d"
                         % (t["dtype"], list(shape), count * dt.itemsize, len(t["data"])))
    return np.frombuffer(t["data"], dt).reshape(shape)


def arrays(obj):
    """obj with every tensor map (at any depth) replaced by a numpy array."""
    if isinstance(obj, dict):
        if is_tensor(obj):
            return tensor_array(obj)
        return {k: arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [arrays(v) for v in obj]
    return obj


def _open_read(source):
    if hasattr(source, "read"):
        return source, False
    if os.fspath(source) == "-":
        import sys
        return sys.stdin.buffer, False
    return open(source, "rb"), True


def read(source, raw=False):
    """Yields the messages of a stream file (a path, '-' for stdin, or a
    binary file object) as dicts, tensors as numpy arrays.

    raw=True yields them as msgpack decodes them (tensor maps kept)."""
    f, close = _open_read(source)
    try:
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=_MAX_MESSAGE, strict_map_key=False)
        for i, m in enumerate(unpacker):
            if not isinstance(m, dict) or not isinstance(m.get("kind"), str):
                raise ValueError("%s: message %d is not a map with a string 'kind'"
                                 % (getattr(f, "name", "<stream>"), i))
            yield m if raw else arrays(m)
    finally:
        if close:
            f.close()


def unpack(data, raw=False):
    """One message from bytes."""
    m = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if not isinstance(m, dict) or not isinstance(m.get("kind"), str):
        raise ValueError("not a myelin message: a msgpack map with a string 'kind'")
    return m if raw else arrays(m)


# ---- writing -------------------------------------------------------------

def _le_array(a, where):
    a = np.asarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    if a.dtype.str not in DTYPES:
        raise TypeError("%s: numpy dtype %s has no myelin tensor dtype (%s)" % (where, a.dtype, " ".join(DTYPES)))
    return a if a.flags.c_contiguous else a.copy(order="C")


def _len_header(buf, n, small, fix, w16, w32):
    if n < small:
        buf.append(fix | n)
    elif n <= 0xFFFF:
        buf.append(w16)
        buf += n.to_bytes(2, "big")
    else:
        buf.append(w32)
        buf += n.to_bytes(4, "big")


_DATA_KEYS = (b"\xa4data", b"\xd9\x04data", b"\xda\x00\x04data", b"\xdb\x00\x00\x00\x04data")
_BIN_WIDTHS = ((1, 0xC4), (2, 0xC5), (4, 0xC6))


def _small_layout(pos, nbytes):
    """Header choices (extra bytes of the shape array header, data key, bin
    width) that put a small payload at a multiple of 8 (msg.c small_layout)."""
    for extra in (0, 2, 4):
        for key in _DATA_KEYS:
            for width, code in _BIN_WIDTHS:
                if (width == 1 and nbytes > 0xFF) or (width == 2 and nbytes > 0xFFFF):
                    continue
                if (pos + extra + len(key) + 1 + width) % SMALL_ALIGN == 0:
                    return extra, key, width, code
    raise AssertionError("no layout")  # not reached: some combination always fits


def _put_tensor(buf, a, base):
    nbytes = a.nbytes
    if nbytes > 0xFFFFFFFF:
        raise ValueError("tensor of %d bytes: the limit is 4 GiB" % nbytes)
    map_at = len(buf)
    buf += b"\x83\xa5dtype\xa3" + a.dtype.str.encode() + b"\xa5shape"
    shape_at = len(buf)
    buf.append(0x90 | a.ndim)
    for d in a.shape:
        buf += msgpack.packb(int(d))
    if nbytes >= PAD_MIN:
        k = (ALIGN - (base + len(buf) + 7 + 10) % ALIGN) % ALIGN
        buf += b"\xa4_pad\xc4" + bytes([k]) + bytes(k)
        buf[map_at] = 0x84
        buf += b"\xa4data\xc6" + nbytes.to_bytes(4, "big")
    else:
        extra, key, width, code = _small_layout(len(buf), nbytes)
        if extra:
            head = (b"\xdc" + a.ndim.to_bytes(2, "big")) if extra == 2 else (b"\xdd" + a.ndim.to_bytes(4, "big"))
            buf[shape_at:shape_at + 1] = head
        buf += key + bytes([code]) + nbytes.to_bytes(width, "big")
    buf += a.tobytes()


def _put(buf, v, where, base):
    if isinstance(v, np.ndarray):
        _put_tensor(buf, _le_array(v, where), base)
    elif isinstance(v, dict):
        if is_tensor(v):  # a raw tensor map (from read(raw=True)): re-lay it out
            _put_tensor(buf, _le_array(tensor_array(v), where), base)
            return
        _len_header(buf, len(v), 16, 0x80, 0xDE, 0xDF)
        for k, x in v.items():
            buf += msgpack.packb(k, use_bin_type=True)
            _put(buf, x, "%s.%s" % (where, k), base)
    elif isinstance(v, (list, tuple)):
        _len_header(buf, len(v), 16, 0x90, 0xDC, 0xDD)
        for i, x in enumerate(v):
            _put(buf, x, "%s[%d]" % (where, i), base)
    elif isinstance(v, np.generic):
        buf += msgpack.packb(v.item(), use_bin_type=True)
    else:
        try:
            buf += msgpack.packb(v, use_bin_type=True)
        except TypeError as e:
            raise TypeError("%s: %s" % (where, e)) from None


def pack(msg, offset=0):
    """One message as msgpack bytes, numpy arrays as aligned tensor maps.
    offset: where the message will start in a stream file (large payloads
    then start on multiples of 64 bytes of the file, as file_sink writes)."""
    if not isinstance(msg, dict) or not isinstance(msg.get("kind"), str):
        raise ValueError("a message is a dict with a string 'kind', not %r" % (type(msg).__name__,))
    buf = bytearray()
    _put(buf, msg, msg["kind"], offset)
    return bytes(buf)


def write(dest, msgs):
    """Writes messages (dicts, numpy arrays as tensors) as a stream file that
    myelin's file_source reads. dest is a path (written under a temporary
    name and renamed when complete, as myelin's sinks do) or a binary file
    object. Returns the number of messages."""
    if hasattr(dest, "write"):
        n = 0
        try:
            off = dest.tell()
        except (OSError, AttributeError):
            off = 0  # a pipe: no file offsets to align to
        for m in msgs:
            b = pack(m, off)
            dest.write(b)
            off += len(b)
            n += 1
        return n
    dest = os.fspath(dest)
    folder = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dest) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            n = write(f, msgs)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise
    return n


def tensor(a):
    """A numpy array as a plain tensor map {dtype, shape, data} (no padding),
    for code that packs messages with msgpack itself."""
    a = _le_array(a, "tensor")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}
