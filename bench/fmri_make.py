# bench/fmri_make.py OUT.nii.gz — a 64x64x40x400 int16 run for bench/fmri.sh:
# a smooth "brain" (so gzip behaves as on real data) plus noise and drift.
import sys
import numpy as np
import nibabel as nb

rng = np.random.default_rng(0)
x, y, z = np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64), np.linspace(-1, 1, 40), indexing='ij')
brain = (x ** 2 + y ** 2 + 1.3 * z ** 2 < 0.8) * 800.0 + 100.0
data = np.empty((64, 64, 40, 400), np.int16)
for t in range(400):
    data[..., t] = (brain + rng.normal(0, 20, brain.shape) + 5 * np.sin(t / 20)).astype(np.int16)
img = nb.Nifti1Image(data, np.diag([3.0, 3.0, 3.5, 1.0]), dtype=np.int16)
img.header.set_zooms((3.0, 3.0, 3.5, 2.0))
nb.save(img, sys.argv[1])
