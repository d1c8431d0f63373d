#!/usr/bin/python3
"""bench/events.sh's peer: writes the benchmark files, and decodes / bins
them in numpy the way tonic does.

  events_peer.py make DIR          nmnist.bin, evt2.raw, evt3.raw, aedat2.aedat,
                                   aedat4{,_lz4,_zstd}.aedat4 (known events)
  events_peer.py decode FMT FILE   seconds, count, checksum (best of 3)
  events_peer.py frames FILE N     N-MNIST recordings of 4000 events each binned
                                   into 60 frames (ToFrame's rules); seconds, events

The N-MNIST reader is a transcription of the rules of tonic.io.read_mnist_file
(5-byte records, y = 240 marks a 2^13 us overflow applied to later events) in
vectorized numpy, as tonic's is. tonic has no EVT reader of its own (it calls
the expelliarmus package, not in Debian): the EVT 2.0 and 3.0 decoders here
are vectorized numpy written from Prophesee's format pages, the fastest fair
numpy peer. AEDAT 2.0: tonic's own technique (np.fromfile of big-endian
address/timestamp pairs, masks as tonic's read_davis_346), plus the skipping
of APS/IMU/trigger records and the 32-bit timestamp unwrap event_source
does. AEDAT 4.0: tonic reads it with loris or the `aedat` Rust package
(neither in Debian); the peer here walks packets in Python, decompresses
them with python3-lz4 / python3-zstandard, finds the event vector from the
FlatBuffer offsets and views it with np.frombuffer — what those readers do.
The checksum lets the script check event for event that both sides decoded
the same thing.
"""
import struct, sys, time
import numpy as np

RNG = np.random.default_rng(7)


def make(d):
    n = 5_000_000
    # N-MNIST: 5M events, an overflow marker every 4000 events
    t = np.cumsum(RNG.integers(0, 3, n)).astype(np.int64) % (1 << 23)
    rec = np.zeros((n, 5), np.uint8)
    rec[:, 0] = RNG.integers(0, 34, n)
    rec[:, 1] = RNG.integers(0, 34, n)
    rec[:, 2] = (RNG.integers(0, 2, n) << 7) | ((t >> 16) & 0x7F)
    rec[:, 3] = (t >> 8) & 0xFF
    rec[:, 4] = t & 0xFF
    rec[::4000, 1] = 240
    rec.tofile(f"{d}/nmnist.bin")
    # EVT 2.0: 5M CD events, a TIME_HIGH word every 64 us
    t = np.cumsum(RNG.integers(0, 2, n)).astype(np.int64)
    high = t >> 6
    words = ((RNG.integers(0, 2, n).astype(np.uint32) << 28) | ((t & 63).astype(np.uint32) << 22)
             | (RNG.integers(0, 640, n).astype(np.uint32) << 11) | RNG.integers(0, 480, n).astype(np.uint32))
    change = np.flatnonzero(np.r_[True, high[1:] != high[:-1]])
    th = (np.uint32(8) << 28) | high[change].astype(np.uint32)
    out = np.insert(words, change, th)
    with open(f"{d}/evt2.raw", "wb") as f:
        f.write(b"% evt 2.0\n% format EVT2;height=480;width=640\n% end\n")
        out.astype("<u4").tofile(f)
    # EVT 3.0: rows of a moving bar: per us a TIME_LOW, per row an ADDR_Y, a
    # VECT_BASE_X and VECT_12 words (half the pixels set), some single ADDR_X
    ws = []
    words_per = []
    for us in range(0, 120000):
        if us % 4096 == 0:
            ws.append(0x8000 | ((us >> 12) & 0xFFF))
        ws.append(0x6000 | (us & 0xFFF))
        y = us % 720
        ws.append(0x0000 | y)
        ws.append(0x3000 | ((us & 1) << 11) | (us * 7 % 1200))
        ws.extend([0x4000 | 0xAAA, 0x4000 | 0x555, 0x4000 | 0xFFF])
        ws.append(0x2000 | (1 << 11) | (us * 13 % 1280))
    arr = np.array(ws, np.uint16)
    with open(f"{d}/evt3.raw", "wb") as f:
        f.write(b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n")
        np.tile(arr, 6).astype("<u2").tofile(f)  # the time base loops: 6 x 120 ms repeats


def make_aedat(d):
    n = 5_000_000
    # AEDAT 2.0, DAVIS346: DVS events, an APS sample every 100 records, a trigger every 1000
    t = np.cumsum(RNG.integers(0, 3, n)).astype(np.int64)
    x, y, p = RNG.integers(0, 346, n), RNG.integers(0, 260, n), RNG.integers(0, 2, n)
    addr = ((y << 22) | ((345 - x) << 12) | (p << 11)).astype(np.uint32)
    addr[::100] |= np.uint32(0x80000000)
    addr[::1000] = np.uint32(1 << 10)
    rec = np.empty(n, [("a", ">u4"), ("t", ">u4")])
    rec["a"], rec["t"] = addr, (t & 0xFFFFFFFF).astype(np.uint32)
    with open(f"{d}/aedat2.aedat", "wb") as f:
        f.write(b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n")
        rec.tofile(f)
    # AEDAT 4.0: 5M events in packets of 4096 (stream 0), as none / LZ4 / Zstd
    ev = np.zeros(n, [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1"), ("pad", "V3")])
    ev["t"] = 1_700_000_000_000_000 + t
    ev["x"], ev["y"], ev["p"] = x, y, p
    info = ('<dv version="2.0"><node name="outInfo" path="/outInfo/"><node name="0" path="/outInfo/0/">'
            '<attr key="typeIdentifier" type="string">EVTS</attr><node name="info" path="/outInfo/0/info/">'
            '<attr key="sizeX" type="int">346</attr><attr key="sizeY" type="int">260</attr></node></node>'
            '</node></dv>').encode()
    import lz4.frame, zstandard
    for comp, name in ((0, "aedat4"), (1, "aedat4_lz4"), (3, "aedat4_zstd")):
        # header: size-prefixed IOHE table (see tests/fuzz/make_corpus.py for the layout)
        hb = struct.pack("<HHHHH", 10, 20, 4, 8, 16) + b"\0\0" + struct.pack("<iiqI", 12, comp, -1, 4)
        hb += struct.pack("<I", len(info)) + info + b"\0"
        hb += b"\0" * (-len(hb) % 4)
        hb = struct.pack("<I", 20) + b"IOHE" + hb
        out = [b"#!AER-DAT4.0\r\n", struct.pack("<I", len(hb)), hb]
        zc = zstandard.ZstdCompressor(level=3)
        for lo in range(0, n, 4096):
            chunk = ev[lo:lo + 4096]
            fb = struct.pack("<I", 16) + b"EVTS" + struct.pack("<HHH", 6, 8, 4) + b"\0\0" + \
                struct.pack("<iII", 8, 4, len(chunk)) + chunk.tobytes()
            body = struct.pack("<I", len(fb)) + fb
            if comp == 1:
                body = lz4.frame.compress(body)
            elif comp == 3:
                body = zc.compress(body)
            out.append(struct.pack("<ii", 0, len(body)) + body)
        with open(f"{d}/{name}.aedat4", "wb") as f:
            f.write(b"".join(out))


def read_aedat2(path):
    b = open(path, "rb").read()
    pos = 0
    while pos < len(b) and b[pos] == ord("#"):
        pos = b.index(b"\n", pos) + 1
    rec = np.frombuffer(b, [("a", ">u4"), ("t", ">u4")], offset=pos, count=(len(b) - pos) // 8)
    a, ts = rec["a"], rec["t"].astype(np.int64)
    ts = ts + (np.cumsum(np.r_[0, np.diff(ts) < -(1 << 31)]) << 32)
    keep = (a & 0x80000400) == 0
    a = a[keep]
    return 345 - ((a >> 12) & 0x3FF), (a >> 22) & 0x1FF, (a >> 11) & 1, ts[keep]


EV4 = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1"), ("pad", "V3")])


def read_aedat4(path):
    import lz4.frame, zstandard
    b = open(path, "rb").read()
    pos = 14
    hl = struct.unpack_from("<I", b, pos)[0]
    h = b[pos + 4:pos + 4 + hl]
    root = struct.unpack_from("<I", h, 0)[0]
    vt = root - struct.unpack_from("<i", h, root)[0]
    comp = struct.unpack_from("<i", h, root + struct.unpack_from("<H", h, vt + 4)[0])[0]
    pos += 4 + hl
    zd = zstandard.ZstdDecompressor()
    parts = []
    while pos + 8 <= len(b):
        stream, size = struct.unpack_from("<ii", b, pos)
        body = b[pos + 8:pos + 8 + size]
        pos += 8 + size
        if comp in (1, 2):
            body = lz4.frame.decompress(body)
        elif comp in (3, 4):
            body = zd.decompress(body)
        fb = memoryview(body)[4:]
        root = struct.unpack_from("<I", fb, 0)[0]
        vt = root - struct.unpack_from("<i", fb, root)[0]
        field = root + struct.unpack_from("<H", fb, vt + 4)[0]
        vec = field + struct.unpack_from("<I", fb, field)[0]
        cnt = struct.unpack_from("<I", fb, vec)[0]
        parts.append(np.frombuffer(fb, EV4, cnt, vec + 4))
    ev = np.concatenate(parts)
    return ev["x"], ev["y"], ev["p"], ev["t"]


def header_len(b):
    pos = 0
    while pos < len(b) and b[pos] == ord("%"):
        nl = b.find(b"\n", pos)
        line = b[pos:nl]
        pos = nl + 1
        if line.strip() == b"% end":
            break
    return pos


def read_nmnist(path):
    raw = np.fromfile(path, np.uint8).astype(np.uint32)
    x, y = raw[0::5], raw[1::5]
    p = (raw[2::5] & 128) >> 7
    t = (((raw[2::5] & 127) << 16) | (raw[3::5] << 8) | raw[4::5]).astype(np.int64)
    marks = y == 240
    t += np.cumsum(marks) * (1 << 13)  # each marker shifts itself and every later event
    keep = ~marks
    return x[keep], y[keep], p[keep], t[keep]


def read_evt2(path):
    b = open(path, "rb").read()
    w = np.frombuffer(b, "<u4", offset=header_len(b))
    typ = w >> 28
    is_high = typ == 8
    hi_idx = np.maximum.accumulate(np.where(is_high, np.arange(len(w)), 0))
    high = np.where(is_high[hi_idx], (w[hi_idx] & 0x0FFFFFFF).astype(np.int64) << 6, 0)
    cd = typ <= 1
    wc = w[cd]
    return (wc >> 11) & 0x7FF, wc & 0x7FF, wc >> 28, high[cd] | ((wc >> 22) & 63)


def ffill(mask, values, default=0):
    idx = np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1))
    out = np.where(idx >= 0, values[np.maximum(idx, 0)], default)
    return out


def read_evt3(path):
    b = open(path, "rb").read()
    w = np.frombuffer(b, "<u2", offset=header_len(b)).astype(np.int64)
    typ = w >> 12
    pay = w & 0xFFF
    y = ffill(typ == 0, w & 0x7FF)
    low = ffill(typ == 6, pay)
    hi_mask = typ == 8
    hv = pay[hi_mask]
    loops = np.r_[0, np.cumsum(hv[1:] < hv[:-1])]
    hfull = np.zeros(len(w), np.int64)
    hfull[hi_mask] = (loops << 24) + (hv << 12)
    tbase = ffill(hi_mask, hfull)
    t = tbase + low
    # vector base: the last VECT_BASE_X plus 12 / 8 per vector word since it
    isbase = typ == 3
    step = np.where(typ == 4, 12, np.where(typ == 5, 8, 0))
    cum = np.cumsum(step)
    at_base = ffill(isbase, cum)
    base = ffill(isbase, w & 0x7FF) + (cum - step - at_base)
    vpol = ffill(isbase, (w >> 11) & 1)
    xs, ys, ps, ts = [], [], [], []
    single = typ == 2
    # events in stream order: singles and vector bits interleaved by word index
    vec = (typ == 4) | (typ == 5)
    bits = np.arange(12)
    vw = np.flatnonzero(vec)
    m = ((pay[vw, None] >> bits) & 1).astype(bool) & ((typ[vw, None] == 4) | (bits < 8))
    wi = np.concatenate([np.flatnonzero(single), np.repeat(vw, m.sum(1))])
    ex = np.concatenate([w[single] & 0x7FF, (base[vw, None] + bits)[m]])
    ep = np.concatenate([(w[single] >> 11) & 1, np.repeat(vpol[vw], m.sum(1))])
    order = np.argsort(wi, kind="stable")
    wi = wi[order]
    return ex[order], y[wi], ep[order], t[wi]


def checksum(x, y, p, t):
    n = len(t)
    k = np.arange(n, dtype=np.uint64) % np.uint64(1000003)
    s = (x.astype(np.uint64) * np.uint64(3) + y.astype(np.uint64) * np.uint64(5) + p.astype(np.uint64) * np.uint64(7)
         + t.astype(np.uint64)) * (k + np.uint64(1))
    return int(s.sum(dtype=np.uint64))


def decode(fmt, path):
    fn = {"nmnist": read_nmnist, "evt2": read_evt2, "evt3": read_evt3, "aedat2": read_aedat2,
          "aedat4": read_aedat4}[fmt]
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        ev = fn(path)
        best = min(best, time.perf_counter() - t0)
    print(f"{best:.6f} {len(ev[3])} {checksum(*ev)}")


def frames(path, n_bins):
    x, y, p, t = read_nmnist(path)
    per = 4000
    recs = len(t) // per
    t0 = time.perf_counter()
    total = 0
    for r in range(recs):
        s = slice(r * per, (r + 1) * per)
        tt = t[s]
        tt = np.sort(tt)
        w = float((tt[-1] - tt[0]) // n_bins)
        starts = np.arange(n_bins) * w + tt[0]
        lo, hi = np.searchsorted(tt, starts), np.searchsorted(tt, starts + w)
        fr = np.zeros((n_bins, 2, 34, 34), np.int16)
        xs, ys, ps = x[s], y[s], p[s]
        for i in range(n_bins):
            np.add.at(fr, (i, ps[lo[i]:hi[i]].astype(int), ys[lo[i]:hi[i]].astype(int), xs[lo[i]:hi[i]].astype(int)), 1)
        total += per
    print(f"{time.perf_counter() - t0:.6f} {total}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
        make_aedat(sys.argv[2])
    elif sys.argv[1] == "decode":
        decode(sys.argv[2], sys.argv[3])
    else:
        frames(sys.argv[2], int(sys.argv[3]))
