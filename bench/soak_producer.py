#!/usr/bin/python3
"""Soak producers for bench/soak.sh (Debian's /usr/bin/python3 + msgpack).

soak_producer.py PORT SECONDS RATE GOOD REPORT.json

GOOD steady producers stay connected for the whole run and together send
RATE messages/s ({"kind": "tick", "producer": "good-<i>", "seq": n}, with a
small payload), paced in 10 ms batches. At the same time a chaos thread
keeps opening connections that each do one random thing: send a few valid
messages then garbage (not msgpack / a map without kind / a bin claiming
4 GiB), disconnect in the middle of a message, connect and leave at once,
or send valid messages and leave cleanly. The report lists how many
messages each steady producer sent and what chaos did.
"""
import json, os, random, socket, sys, threading, time
import msgpack


def connect(port):
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            time.sleep(0.05)
    raise SystemExit("soak_producer: cannot connect to port %d" % port)


def steady(port, name, seconds, rate, out):
    s = connect(port)
    payload = b"\x5a" * 32
    seq, t0 = 0, time.monotonic()
    while True:
        now = time.monotonic() - t0
        if now >= seconds:
            break
        due = int(now * rate)
        if due > seq:
            batch = b"".join(msgpack.packb({"kind": "tick", "producer": name, "seq": i, "t": now, "p": payload},
                                           use_bin_type=True) for i in range(seq, due))
            s.sendall(batch)
            seq = due
        time.sleep(0.01)
    s.shutdown(socket.SHUT_WR)
    s.close()
    out[name] = seq


GARBAGE = [b"\xc1\xc1\xc1\xc1", b"\x81\xa1x\x01",  # not msgpack; a map with no kind
           b"\x81\xa4kind\xc6\xff\xff\xff\xf0",      # a 4 GiB bin claim
           b"\xdf\xff\xff\xff\xff", b"hello world\n"]


def chaos(port, seconds, stats, rng):
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < seconds:
        k += 1
        what = rng.choice(["garbage", "cut", "leave", "clean"])
        try:
            s = connect(port)
            good = b"".join(msgpack.packb({"kind": "tick", "producer": "chaos-%d" % k, "seq": i}, use_bin_type=True)
                            for i in range(rng.randint(0, 20)))
            if what == "garbage":
                s.sendall(good + rng.choice(GARBAGE) + good)
            elif what == "cut":
                s.sendall(good + good[: max(1, len(good) // 3)] if good else b"\x83\xa4kind")
            elif what == "clean":
                s.sendall(good)
            s.close()
            stats[what] = stats.get(what, 0) + 1
        except OSError as e:  # the source closed a garbage connection first
            stats["oserror"] = stats.get("oserror", 0) + 1
        time.sleep(rng.uniform(0.0, 0.05))


def main():
    port, seconds, rate, good, report = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    sent, stats = {}, {}
    threads = [threading.Thread(target=steady, args=(port, "good-%d" % i, seconds, rate / good, sent)) for i in range(good)]
    threads.append(threading.Thread(target=chaos, args=(port, seconds, stats, random.Random(1))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(report, "w") as f:
        json.dump({"sent": sent, "chaos": stats}, f)


if __name__ == "__main__":
    main()
