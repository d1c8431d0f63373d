#!/usr/bin/env python3
"""A stand-in feedback display for bench/rtfmri.sh: listens on PORT, accepts
the pipeline's tcp_sink, and prints "INDEX ARRIVAL_TIME" (time.time() when
the message is decoded) per feedback message. Debian python3 + msgpack.

usage: display.py PORT COUNT
Ends after COUNT messages or when the sender closes.
"""
import socket, sys, time
import msgpack

port, count = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port))
srv.listen(1)
print('listening', flush=True, file=sys.stderr)
conn, _ = srv.accept()
unp = msgpack.Unpacker(raw=False)
seen = 0
while seen < count:
    b = conn.recv(1 << 20)
    if not b:
        break
    now = time.time()
    unp.feed(b)
    for m in unp:
        print('%d %.6f' % (m.get('index', -1), now), flush=True)
        seen += 1
