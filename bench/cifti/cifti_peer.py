# bench/cifti peer: make FILE, or time nibabel decoding it and check myelin's output.
# usage: cifti_peer.py make FILE T     (an HCP-shaped .dtseries.nii: 91282 grayordinates x T)
#        cifti_peer.py time FILE REPEATS OURS.f32
#   prints "best_get_fdata best_c_order identical" (seconds; identical = 1 when
#   myelin's [T, V] float32 equals nibabel's get_fdata(dtype=float32) bit for bit)
import sys, time
import numpy as np
import nibabel as nb
from nibabel import cifti2 as ci

if sys.argv[1] == 'make':
    path, T = sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    left = np.zeros(32492, bool)
    left[rng.choice(32492, 29696, replace=False)] = True
    right = np.zeros(32492, bool)
    right[rng.choice(32492, 29716, replace=False)] = True
    vol = np.zeros((91, 109, 91), bool)
    ijk = np.argwhere(np.ones((91, 109, 91), bool))
    d = ((ijk - [45, 54, 40]) ** 2).sum(1)
    vol.flat[np.argsort(d, kind='stable')[:31870]] = True
    aff = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    bm = (ci.BrainModelAxis.from_mask(left, name='CortexLeft') + ci.BrainModelAxis.from_mask(right, name='CortexRight')
          + ci.BrainModelAxis.from_mask(vol, affine=aff, name='thalamus_left'))
    data = rng.normal(size=(T, len(bm))).astype(np.float32)
    img = ci.Cifti2Image(data, header=(ci.SeriesAxis(0, 0.72, T), bm))
    img.nifti_header.set_intent('ConnDenseSeries')
    nb.save(img, path)
    sys.exit(0)

path, reps, ours = sys.argv[2], int(sys.argv[3]), sys.argv[4]
best_f = best_c = 1e300
for _ in range(reps):
    t0 = time.perf_counter()
    x = nb.load(path).get_fdata(dtype=np.float32)
    best_f = min(best_f, time.perf_counter() - t0)
    t0 = time.perf_counter()
    y = np.ascontiguousarray(nb.load(path).get_fdata(dtype=np.float32))
    best_c = min(best_c, time.perf_counter() - t0)
mine = np.fromfile(ours, np.float32).reshape(x.shape)
print(f'{best_f:.6f} {best_c:.6f} {int(mine.tobytes() == y.tobytes())}')
