# bench/fmri_nibabel.py FILE [REPEATS] — the peer: nibabel's
# get_fdata(dtype=float32) on the same file, best wall time (fresh load each time).
import sys, time
import numpy as np
import nibabel as nb

reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
best = 1e30
for _ in range(reps):
    t0 = time.perf_counter()
    d = nb.load(sys.argv[1]).get_fdata(dtype=np.float32)
    best = min(best, time.perf_counter() - t0)
print(f'{best:.6f} {d.shape[3]} {d.shape[0] * d.shape[1] * d.shape[2]}')
