#!/usr/bin/env python3
"""Replays a DICOM series into a folder as a scanner's real-time export does.

usage: fake_scanner.py SRC DEST [--tr SECONDS] [--chunks N] [--count N]

SRC is a folder (its files in name order) or a list of files; .gz files are
inflated. Every TR one file appears in DEST: written in N chunks under a
dot-name (".NAME.part", which folder watchers ignore), then renamed to NAME
- so a reader never sees a half-written file under its final name. For each
file a line "NAME COMPLETE_TIME" (time.time() after the rename) goes to
stdout, for latency measurements. Only the standard library is used.
"""
import argparse, gzip, os, sys, time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('src', nargs='+')
    ap.add_argument('dest')
    ap.add_argument('--tr', type=float, default=2.0)
    ap.add_argument('--chunks', type=int, default=4)
    ap.add_argument('--count', type=int, default=0, help='files to write (0 = all; cycles when larger)')
    a = ap.parse_args()
    files = []
    for s in a.src:
        files += sorted(os.path.join(s, f) for f in os.listdir(s) if not f.startswith('.')) if os.path.isdir(s) else [s]
    if not files:
        sys.exit('no input file')
    os.makedirs(a.dest, exist_ok=True)
    n = a.count or len(files)
    t0 = time.monotonic()
    for i in range(n):
        src = files[i % len(files)]
        data = gzip.open(src).read() if src.endswith('.gz') else open(src, 'rb').read()
        name = 'vol_%05d.dcm' % (i + 1)
        tmp = os.path.join(a.dest, '.%s.part' % name)
        with open(tmp, 'wb') as f:
            step = max(1, len(data) // a.chunks + 1)
            for k in range(0, len(data), step):
                f.write(data[k:k + step])
                f.flush()
                time.sleep(min(0.01, a.tr / (8 * a.chunks)))
        os.rename(tmp, os.path.join(a.dest, name))
        print('%s %.6f' % (name, time.time()), flush=True)
        left = t0 + (i + 1) * a.tr - time.monotonic()
        if left > 0 and i + 1 < n:
            time.sleep(left)


if __name__ == '__main__':
    main()
