#!/usr/bin/python3
"""Helper for bench/stream_files.sh (Debian /usr/bin/python3, numpy, msgpack).

  stream_files_peer.py gen FILE S T V    S `run` messages (float32 [T, V] each,
                                         a shared signal in the first 10% of
                                         voxels), laid out as file_sink writes
                                         them: each payload starts on a multiple
                                         of 64 bytes of the file ("_pad")
  stream_files_peer.py read FILE         unpack every message (msgpack.Unpacker)
  stream_files_peer.py copy FILE OUT     unpack and pack again (msgpack.Packer)
  stream_files_peer.py isc FILE OUT.npy  read the runs, then leave-one-out ISC +
                                         Fisher-z mean (isc_peer.isc_loo), save
  stream_files_peer.py diff A.npy B.npy  max |A - B|
"""
import sys

import msgpack
import numpy as np

MAX_BUF = 1 << 31


def gen(path, S, T, V):
    rng = np.random.default_rng(1)
    shared = rng.standard_normal((T, 1)).astype(np.float32)
    k = max(1, V // 10)
    voxels = np.arange(V, dtype="<u4")
    off = 0
    with open(path, "wb") as f:
        for s in range(S):
            x = rng.standard_normal((T, V), dtype=np.float32)
            x[:, :k] += shared
            m = {"kind": "run", "subject": "%02d" % (s + 1), "task": "story", "run": 1, "tr": 1.5,
                 "geometry": {"dims": [V, 1, 1],
                              "affine": {"dtype": "<f8", "shape": [4, 4], "data": np.eye(4).tobytes()},
                              "voxels": {"dtype": "<u4", "shape": [V], "data": voxels.tobytes()}},
                 "data": {"dtype": "<f4", "shape": [T, V], "_pad": b"", "data": x.tobytes()}}
            b = msgpack.packb(m, use_bin_type=True)
            at = b.index(b"\xa4_pad\xc4\x00") + 7 + 10  # payload after "data" key + bin32 header
            m["data"]["_pad"] = bytes(-(off + at) % 64)
            b = msgpack.packb(m, use_bin_type=True)
            f.write(b)
            off += len(b)


def read(path):
    n = 0
    for _ in msgpack.Unpacker(open(path, "rb"), raw=False, max_buffer_size=MAX_BUF):
        n += 1
    return n


def copy(path, out):
    pk = msgpack.Packer(use_bin_type=True)
    with open(out, "wb") as f:
        for m in msgpack.Unpacker(open(path, "rb"), raw=False, max_buffer_size=MAX_BUF):
            f.write(pk.pack(m))


def isc(path, out):
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from isc_peer import isc_loo
    runs = []
    for m in msgpack.Unpacker(open(path, "rb"), raw=False, max_buffer_size=MAX_BUF):
        d = m["data"]
        runs.append(np.frombuffer(d["data"], d["dtype"]).reshape(d["shape"]))
    data = np.stack(runs, axis=2)  # [T, V, S] as BrainIAK takes it
    np.save(out, isc_loo(data))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2], *(int(a) for a in sys.argv[3:6]))
    elif cmd == "read":
        read(sys.argv[2])
    elif cmd == "copy":
        copy(sys.argv[2], sys.argv[3])
    elif cmd == "isc":
        isc(sys.argv[2], sys.argv[3])
    elif cmd == "diff":
        a, b = np.load(sys.argv[2]).ravel(), np.load(sys.argv[3]).ravel()
        print("%.3g" % np.nanmax(np.abs(a - b)))
