#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Run with Debian's /usr/bin/python3 (numpy, msgpack, nibabel); the output is
committed, so this only documents and reproduces the seeds. Seeds are small
(a few KB) valid inputs plus a few near-misses; libFuzzer mutates from them.
"""
import gzip, io, os, shutil, struct, sys
import msgpack, numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
corpus = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tensor(a):
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def messages():
    r = np.random.default_rng(1)
    yield "tensor", {"kind": "tensor", "seq": 0, "t": 0.5, "data": tensor(np.arange(6, dtype="<f4").reshape(2, 3))}
    yield "sample", {"kind": "sample", "seq": 1, "x": tensor(r.random((4, 4)).astype("<f8")), "label": 3,
                     "index": 7, "split": "train", "epoch": 0}
    yield "spikes", {"kind": "spikes", "n": 4, "steps": 8, "dt": 0.001, "step": tensor(np.array([0, 1, 5], "<u4")),
                     "unit": tensor(np.array([2, 0, 3], "<u4")), "label": 1}
    yield "network", {"kind": "network", "model": "cuba_lif", "neuron": {"vth": 1.0, "cdecay": 0.5, "vdecay": 0.25},
                      "steps": 4, "layers": [{"name": "fc1", "weight": tensor(np.ones((2, 3), "<f4")),
                                              "bias": tensor(np.zeros(2, "<f4"))}]}
    yield "metrics", {"kind": "metrics", "values": {"acc": 0.5, "loss": 1.25}, "stage": "learn", "epoch": 2}
    yield "volume", {"kind": "volume", "data": tensor(np.ones(5, "<f4")), "index": 0, "tr": 2.0, "subject": "01",
                     "task": "x", "run": 1, "geometry": {"dims": [2, 2, 2], "affine": tensor(np.eye(4)),
                                                         "voxels": tensor(np.array([0, 1, 2, 3, 7], "<u4"))}}
    yield "dtypes", {"kind": "tensor", "a": tensor(np.array([1, -2], "<i2")), "b": tensor(np.array([1], "|u1")),
                     "c": tensor(np.array([True, False])), "d": tensor(np.array(3, "<i8")),
                     "e": tensor(np.zeros((0, 3), "<u2"))}
    yield "nested", {"kind": "x", "a": [[[[{"b": [1, -1, None, True, 1.5, "s", b"\x00"]}]]]]}


def events_seeds():
    """events: byte 0 = decoder (low 2 bits: auto, nmnist, evt2, evt3; bit 2: a 20x10 sensor)."""
    def nm(x, y, p, t):
        return bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    nmnist = nm(3, 5, 1, 100) + nm(33, 0, 0, 8000) + nm(0, 240, 0, 0) + nm(10, 33, 1, 50)
    put("events", "nmnist.bin", b"\x01" + nmnist)
    put("events", "nmnist_cut.bin", b"\x05" + nmnist[:-2])
    w32 = lambda w: struct.pack("<I", w)
    evt2 = b"% evt 2.0\n% format EVT2;height=480;width=640\n% end\n" + w32(0x8 << 28 | 100) + \
        w32(1 << 28 | 7 << 22 | 5 << 11 | 6) + w32(0xA << 28 | 3) + w32(0 << 28 | 63 << 22 | 639 << 11 | 479)
    put("events", "evt2.raw", b"\x00" + evt2)
    put("events", "evt2_bare.raw", b"\x02" + evt2[evt2.index(b"% end\n") + 6:])
    w16 = lambda w: struct.pack("<H", w)
    words = [0x8FFF, 0x6010, 0x0000 | 7, 0x2000 | 1 << 11 | 9, 0x3000 | 2, 0x4801, 0x5003, 0xA005, 0x8001, 0x6002,
             0x2000 | 19, 0x7000, 0xF000, 0xE000]
    evt3 = b"% evt 3.0\n% geometry 20x10\n% end\n" + b"".join(w16(w) for w in words)
    put("events", "evt3.raw", b"\x00" + evt3)
    put("events", "evt3_small_sensor.raw", b"\x07" + evt3)
    put("events", "evt3_odd.raw", b"\x03" + evt3[:-1])
    # AEDAT 3.1 (found by content with selector 0): a polarity packet, another type, a cut one
    pk = lambda typ, size, ovf, cap, num: struct.pack("<hhiiiiii", typ, 1, size, 4, ovf, cap, num, num)
    pol = lambda x, y, p, v, ts: struct.pack("<Ii", x << 17 | y << 2 | p << 1 | v, ts)
    aedat = (b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n" + pk(1, 8, 0, 3, 2) + pol(5, 6, 1, 1, 10)
             + pol(7, 3, 0, 0, 12) + pol(1, 1, 1, 1, 99) + pk(2, 4, 0, 1, 1) + b"\0\0\0\0" + pk(1, 8, 2, 2, 2)
             + pol(19, 9, 0, 1, 3) + pol(4, 4, 1, 1, 4))
    put("events", "aedat3.aedat", b"\x00" + aedat)
    put("events", "aedat3_cut.aedat", b"\x04" + aedat[:-5])
    # AEDAT 2.0 (by content): big-endian address + timestamp; DVS128 and DAVIS240 layouts, a cut one
    a2 = lambda addr, ts: struct.pack(">II", addr, ts)
    dvs = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n" + a2(3 << 8 | 5 << 1, 100) + \
        a2(0x8000, 101) + a2(127 << 8 | 127 << 1 | 1, 0xFFFFFFF0) + a2(1 << 8, 3)
    put("events", "aedat2_dvs128.aedat", b"\x00" + dvs)
    put("events", "aedat2_cut.aedat", b"\x04" + dvs[:-3])
    davis = b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n" + a2(179 << 22 | 1 << 11, 5) + \
        a2(0x80000000 | 3 << 22, 6) + a2(1 << 10, 7) + a2(7 << 22 | 239 << 12, 9) + a2(240 << 12, 10)
    put("events", "aedat2_davis.aedat", b"\x00" + davis)


def aedat4_seeds():
    """aedat4: byte 0 = piece size - 1 of the stream run; then an AEDAT 4.0 file.
    FlatBuffers laid out by hand (size prefix, root offset, identifier,
    vtable, table), bodies compressed with the lz4 and zstd command-line
    tools (frame formats, as liblz4's frame API and libzstd read them)."""
    import subprocess

    def header(compression, table, info):
        # vtable (10 bytes: 3 fields) at 12, table at 24: soffset, i32 compression,
        # pad, i64 table position at +8, uoffset of the string at +16; string at 44
        s = info.encode()
        body = struct.pack("<HHHHH", 10, 20, 4, 8, 16) + b"\0\0"
        body += struct.pack("<iiqI", 12, compression, table, 4)
        body += struct.pack("<I", len(s)) + s + b"\0"
        body += b"\0" * (-len(body) % 4)
        fb = struct.pack("<I", 20) + b"IOHE" + body
        return struct.pack("<I", len(fb)) + fb

    def events(evs):
        # vtable (6 bytes: 1 field) at 12, table at 20 (soffset 8, uoffset 4 to the
        # vector), vector length at 28, 16-byte structs from 32 (8-aligned)
        body = struct.pack("<HHH", 6, 8, 4) + b"\0\0" + struct.pack("<iII", 8, 4, len(evs))
        body += b"".join(struct.pack("<qhh?3x", t, x, y, p) for t, x, y, p in evs)
        fb = struct.pack("<I", 16) + b"EVTS" + body
        return struct.pack("<I", len(fb)) + fb

    def packed(comp, b):
        if comp == 0:
            return b
        tool = ["lz4", "-c", "-q"] if comp in (1, 2) else ["zstd", "-c", "-q"]
        return subprocess.run(tool, input=b, stdout=subprocess.PIPE, check=True).stdout

    info = ('<dv version="2.0"><node name="outInfo" path="/outInfo/"><node name="0" path="/outInfo/0/">'
            '<attr key="typeIdentifier" type="string">EVTS</attr><node name="info" path="/outInfo/0/info/">'
            '<attr key="sizeX" type="int">64</attr><attr key="sizeY" type="int">48</attr></node></node></node></dv>')
    evs = [(1000, 3, 4, True), (1005, 63, 47, False), (1005, 0, 0, True)]
    for comp, name in ((0, "none"), (1, "lz4"), (3, "zstd")):
        f = b"#!AER-DAT4.0\r\n" + header(comp, -1, info)
        for i, pk in enumerate([events(evs), events(evs[1:]), events([])]):
            c = packed(comp, pk)
            f += struct.pack("<ii", i % 2, len(c)) + c
        put("aedat4", f"{name}.aedat4", b"\x07" + f)
        put("aedat4", f"{name}_cut.aedat4", b"\x00" + f[:-7])
    # a network stream (no version line), read whole and byte by byte
    put("aedat4", "stream.aedat4", b"\x00" + header(0, -1, info) + struct.pack("<ii", 0, 64) + events(evs)[:64])


def main():
    events_seeds()
    aedat4_seeds()
    # seeds are (re)written in place; crash-* regression inputs are kept
    msgs = list(messages())
    for name, m in msgs:
        b = msgpack.packb(m, use_bin_type=True)
        put("msg", name, b)
        put("msg", name + "_cut", b[: len(b) // 2])
    # tcp: byte 0 = max_bytes choice (>=0x80: default), byte 1 = chunk seed, then the stream
    stream = b"".join(msgpack.packb(m, use_bin_type=True) for _, m in msgs)
    put("tcp", "all_default", b"\x80\x01" + stream)
    put("tcp", "all_small_limit", b"\x10\x07" + stream)
    put("tcp", "garbage_after", b"\x80\x02" + stream[:200] + b"\xc1\xff\x00garbage")
    put("tcp", "truncated", b"\x80\x03" + stream[:-5])
    put("tcp", "claims_huge_bin", b"\x80\x04" + msgpack.packb({"kind": "t"}) + b"\x81\xa4kind\xc6\xff\xff\xff\xf0")
    # pipeline files: the shipped ones and small ones touching the core plugins
    for f in sorted(os.listdir(os.path.join(root, "pipelines"))):
        if f.endswith(".yaml"):
            shutil.copy(os.path.join(root, "pipelines", f), os.path.join(corpus, "pipeline", f)) \
                if os.path.isdir(os.path.join(corpus, "pipeline")) else put("pipeline", f, open(os.path.join(root, "pipelines", f), "rb").read())
    put("pipeline", "core.yaml", b"""name: core
stages:
  - {id: gen, plugin: gen_source, params: {count: 10, bytes: 16, fill: true}}
  - {id: pass, plugin: passthrough, inputs: [gen]}
  - {id: sink, plugin: file_sink, inputs: [pass], params: {path: "${TMPDIR:-/tmp}/x.mpk"}, queue: {capacity: 4}}
""")
    put("pipeline", "errors.yaml", b"""name: bad
stages:
  - {id: a, plugin: gen_source, params: {count: -1, nope: 2}}
  - {id: a, plugin: no_such_plugin, inputs: [b.out]}
  - {id: b, plugin: passthrough, inputs: [c]}
  - {id: c, plugin: passthrough, inputs: {in: [b]}}
""")
    put("pipeline", "anchors.yaml", b"name: &n x\nstages: [&s {id: a, plugin: null_sink, inputs: [*s]}]\n")
    # npy
    for name, a in [("f4", np.arange(6, dtype="<f4").reshape(2, 3)), ("i8", np.array([1, -1], "<i8")),
                    ("b1", np.array([True])), ("u1_3d", np.zeros((2, 1, 2), "|u1")), ("scalar", np.array(2.5)),
                    ("fortran", np.asfortranarray(np.ones((2, 2), "<f8"))), ("empty", np.zeros((0,), "<u2"))]:
        buf = io.BytesIO()
        np.save(buf, a)
        put("npy", name + ".npy", buf.getvalue())
    # npz: stored and deflated archives
    for name, fn in [("stored.npz", np.savez), ("deflated.npz", np.savez_compressed)]:
        buf = io.BytesIO()
        fn(buf, x=np.arange(6, dtype="<f4").reshape(2, 3), y=np.array([1, 0], "<i8"))
        put("npz", name, buf.getvalue())
    # dataset: IDX (plain, gz) and CSV
    imgs = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    idx = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 2, 3, 3) + imgs.tobytes()
    put("dataset", "images.idx", idx)
    put("dataset", "labels.idx", struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
    put("dataset", "floats.idx", struct.pack(">BBBBII", 0, 0, 0x0D, 2, 1, 2) + struct.pack(">ff", 1.5, -2))
    put("dataset", "images.idx.gz", gzip.compress(idx, mtime=0))
    put("dataset", "table.csv", b"a,b,label\n1,2.5,0\n3,-4e-3,1\n")
    put("dataset", "plain.csv", b"1 2 3\n4 5 6\n")
    # nifti: tiny images
    import nibabel as nib
    for name, shape, dt in [("3d", (2, 3, 2), np.float32), ("4d", (2, 2, 2, 3), np.int16), ("u8", (3, 1, 1, 2), np.uint8)]:
        img = nib.Nifti1Image(np.arange(np.prod(shape)).reshape(shape).astype(dt), np.diag([2.0, 2.0, 2.0, 1.0]))
        img.header.set_xyzt_units("mm", "sec")
        if len(shape) == 4:
            img.header["pixdim"][4] = 1.5
        b = img.to_bytes()
        put("nifti", name + ".nii", b)
        put("nifti", name + ".nii.gz", gzip.compress(b, mtime=0))
    img2 = nib.Nifti2Image(np.ones((2, 2, 2), np.float64), np.eye(4))
    put("nifti", "nifti2.nii", img2.to_bytes())
    # netx: lava-dl's tiny.net (tests/data/README.md)
    with open(os.path.join(here, "..", "data", "netx", "tiny.net"), "rb") as f:
        put("netx", "tiny.net", f.read())


if __name__ == "__main__":
    sys.exit(main())
