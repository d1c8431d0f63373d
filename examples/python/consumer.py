#!/usr/bin/env python3
"""Receive messages from a running myelin pipeline's `tcp_sink`.

Listens on HOST:PORT; a pipeline stage `{plugin: tcp_sink, params: {connect:
HOST:PORT}}` dials in and streams every message. Prints one line per message
(kind, seq, tensor shapes) and, with --out DIR, saves every tensor field of
the first message of each kind as DIR/KIND_FIELD.npy. Needs only msgpack and
numpy.

    python3 examples/python/consumer.py --port 7701 --expect 200 --out out/consumer &
    myelin run pipelines/live_tcp.yaml
"""
import argparse
import os
import socket

import msgpack
import numpy as np


def as_array(t):
    return np.frombuffer(t["data"], t["dtype"]).reshape(t["shape"])


def is_tensor(v):
    return isinstance(v, dict) and {"dtype", "shape", "data"} <= v.keys()


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
            count += 1
            kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
            shapes = {k: as_array(v).shape for k, v in m.items() if is_tensor(v)}
            if args.out and kinds[m["kind"]] == 1:
                os.makedirs(args.out, exist_ok=True)
                for k, v in m.items():
                    if is_tensor(v):
                        np.save(os.path.join(args.out, "%s_%s.npy" % (m["kind"], k)), as_array(v))
            if not args.quiet:
                print(m["kind"], m.get("seq"), shapes)
    conn.close()
    print(f"received {count} messages: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
