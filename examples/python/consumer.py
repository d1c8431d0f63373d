#!/usr/bin/env python3
"""Receive messages from a running myelin pipeline's `tcp_sink`.

Listens on HOST:PORT; a pipeline stage `{plugin: tcp_sink, params: {connect:
HOST:PORT}}` dials in and streams every message. Prints one line per message
(kind, seq, tensor shapes) and, with --out DIR, saves every tensor field of
the first message of each kind as DIR/KIND_FIELD.npy. Uses the myelin Python
package (python/; numpy and msgpack) to turn tensors into numpy arrays.

    python3 examples/python/consumer.py --port 7701 --expect 200 --out out/consumer &
    myelin run pipelines/live_tcp.yaml
"""
import argparse
import os
import socket
import sys

import msgpack
import numpy as np

try:
    import myelin
except ImportError:  # not installed (pip install ./python): the repository's copy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import myelin


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7701)
    ap.add_argument("--expect", type=int, default=0, help="stop after this many messages (0 = until closed)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", help="save the tensors of the first message of each kind as OUT/KIND_FIELD.npy")
    args = ap.parse_args()
    srv = socket.create_server((args.host, args.port))
    conn, _ = srv.accept()
    unpacker = msgpack.Unpacker(raw=False)
    count, kinds = 0, {}
    while args.expect == 0 or count < args.expect:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        unpacker.feed(chunk)
        for m in unpacker:
            m = myelin.arrays(m)  # tensors as numpy arrays
            count += 1
            kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
            shapes = {k: v.shape for k, v in m.items() if isinstance(v, np.ndarray)}
            if args.out and kinds[m["kind"]] == 1:
                os.makedirs(args.out, exist_ok=True)
                for k, v in m.items():
                    if isinstance(v, np.ndarray):
                        np.save(os.path.join(args.out, "%s_%s.npy" % (m["kind"], k)), v)
            if not args.quiet:
                print(m["kind"], m.get("seq"), shapes)
    conn.close()
    print(f"received {count} messages: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
