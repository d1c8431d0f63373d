#!/usr/bin/python3
"""soak_check.py SINK.mpk REPORT.json RSS.txt — verdict of bench/soak.sh.

Every message of each steady producer must be in the sink exactly once and
in order (seq 0..sent-1); chaos messages are counted, not required. RSS
samples (seconds, KiB) are summarized: first, last, max, and the growth
over the second half of the run (flat = a few MiB at most).
"""
import json, sys
import msgpack


def main():
    sink, report, rss = sys.argv[1:4]
    rep = json.load(open(report))
    seqs, chaos, total = {}, 0, 0
    with open(sink, "rb") as f:
        for m in msgpack.Unpacker(f, raw=False):
            total += 1
            p = m.get("producer", "")
            if p.startswith("good-"):
                seqs.setdefault(p, []).append(m["seq"])
            else:
                chaos += 1
    ok = True
    for name, n in sorted(rep["sent"].items()):
        got = seqs.get(name, [])
        inorder = got == list(range(n))
        ok &= inorder
        print("%-8s sent %9d  in sink %9d  %s" % (name, n, len(got), "complete, in order" if inorder else "MISMATCH"))
    print("chaos connections: %s; chaos messages in sink: %d; total messages: %d" % (rep["chaos"], chaos, total))
    samples = [tuple(map(float, l.split())) for l in open(rss) if l.strip()]
    if samples:
        kib = [s[1] for s in samples]
        half = [s[1] for s in samples if s[0] >= samples[-1][0] / 2]
        print("RSS KiB: first %d  last %d  max %d  growth over 2nd half %+d (%d samples)"
              % (kib[0], kib[-1], max(kib), half[-1] - half[0], len(kib)))
    print("VERDICT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
