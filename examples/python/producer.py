#!/usr/bin/env python3
"""Stream tensors and spike trains into a running myelin pipeline.

A pipeline with a `tcp_source` stage listening on HOST:PORT receives these
messages exactly as if they came from another stage. Uses the myelin Python
package (python/; numpy and msgpack), which lays tensors out as myelin's
own stages do:

    myelin run pipelines/live_tcp.yaml &          # tcp_source listen 127.0.0.1:7700
    python3 examples/python/producer.py --port 7700 --count 100
"""
import argparse
import os
import socket
import sys
import time

import numpy as np

try:
    import myelin
except ImportError:  # not installed (pip install ./python): the repository's copy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import myelin


def spikes(step, unit, n, steps, dt=0.001, **context):
    """A `spikes` message: events sorted by step, then unit."""
    order = np.lexsort((unit, step))
    return {"kind": "spikes", "n": n, "steps": steps, "dt": dt,
            "step": np.asarray(step, "<u4")[order], "unit": np.asarray(unit, "<u4")[order], **context}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7700)
    ap.add_argument("--count", type=int, default=10, help="tensor messages (and as many spike messages)")
    ap.add_argument("--rate", type=float, default=0, help="messages/s, 0 = as fast as possible")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with socket.create_connection((args.host, args.port)) as sock:
        t0 = time.time()
        for i in range(args.count):
            x = rng.standard_normal((4, 8)).astype("<f4")
            sock.sendall(myelin.pack({"kind": "tensor", "seq": 2 * i, "t": time.time() - t0, "data": x}))
            step = rng.integers(0, 32, 20)
            unit = rng.integers(0, 100, 20)
            sock.sendall(myelin.pack(spikes(step, unit, 100, 32, seq=2 * i + 1, label=int(i % 10), index=i)))
            if args.rate > 0:
                time.sleep(max(0.0, (i + 1) / args.rate - (time.time() - t0)))
    print(f"sent {2 * args.count} messages")


if __name__ == "__main__":
    main()
