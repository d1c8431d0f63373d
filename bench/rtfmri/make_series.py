#!/usr/bin/env python3
"""Writes the real-time benchmark's scanner series (Debian python3 with numpy,
scipy, nibabel, pydicom).

usage: make_series.py REPO OUTDIR N

From a real EPI volume (nibabel's example4d, volume 0:
REPO/tests/data/realign/example4d_vol0.nii.gz) resampled to 64 x 64 x 40,
N volumes moved by a slow random walk of rigid motion (steps of 0.05 mm /
0.05 deg per TR, within 2 mm / 2 deg, tricubic) plus 1% noise, written as
Siemens mosaic DICOM files (a 7 x 7 mosaic of 64 x 64 tiles, 40 slices;
header from nibabel's siemens_dwi_0.dcm.gz) into OUTDIR/series/. Also
OUTDIR/ref64.nii.gz (the 64 x 64 x 40 volume, for the realignment peer)
and OUTDIR/roi.nii (a 10 x 10 x 8 block on the mosaic grid).
"""
import copy, gzip, os, struct, sys
import numpy as np
import nibabel as nb
import pydicom
from pydicom.uid import generate_uid
from scipy import ndimage

repo, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(os.path.join(out, 'series'), exist_ok=True)
im = nb.load(os.path.join(repo, 'tests', 'data', 'realign', 'example4d_vol0.nii.gz'))
d = im.get_fdata().astype(np.float32)
shape = (64, 64, 40)
ref = ndimage.zoom(d, [s / o for s, o in zip(shape, d.shape)], order=1)
A = im.affine.copy()
for i in range(3):
    A[:3, i] *= d.shape[i] / ref.shape[i]
nb.save(nb.Nifti1Image(ref, A), os.path.join(out, 'ref64.nii.gz'))
mask = np.zeros(shape, np.float32)
mask[27:37, 27:37, 16:24] = 1
nb.save(nb.Nifti1Image(mask, np.eye(4)), os.path.join(out, 'roi.nii'))


def rigid(p, c):
    """T(x) = R (x - c) + c + t, R = Rx Ry Rz (degrees), as plugins/realign."""
    a, b, g = np.radians(p[3:])
    Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    Ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    Rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = Rx @ Ry @ Rz
    T[:3, 3] = c - T[:3, :3] @ c + p[:3]
    return T


src = pydicom.dcmread(gzip.open(os.path.join(os.path.dirname(nb.__file__), 'nicom', 'tests', 'data',
                                             'siemens_dwi_0.dcm.gz')))
series = generate_uid(prefix='1.2.826.0.1.3680043.8.498.')
c = (A @ np.r_[(np.array(shape) - 1) / 2, 1])[:3]
Ainv = np.linalg.inv(A)
rng = np.random.default_rng(18)
p = np.zeros(6)
noise = 0.01 * float(ref.mean())
for t in range(n):
    if t:
        p = np.clip(p + rng.normal(0, 0.05, 6), -2, 2)
    M = Ainv @ np.linalg.inv(rigid(p, c)) @ A  # moved(x) = ref(T^-1 x), in voxels
    vol = ndimage.affine_transform(ref, M[:3, :3], M[:3, 3], order=3, mode='constant')
    vol = np.clip(vol + rng.normal(0, noise, shape), 0, 32767).astype(np.uint16)
    mos = np.zeros((448, 448), np.uint16)
    for k in range(40):
        r, q = divmod(k, 7)
        mos[r * 64:(r + 1) * 64, q * 64:(q + 1) * 64] = vol[:, ::-1, k].T  # column = x, row from the last = y
    ds = copy.deepcopy(src)
    ds.Rows, ds.Columns = 448, 448
    ds.PixelSpacing = ['%.4f' % abs(A[1, 1]), '%.4f' % abs(A[0, 0])]
    ds.SliceThickness = '%.4f' % abs(A[2, 2])
    ds.SpacingBetweenSlices = '%.4f' % abs(A[2, 2])
    ds[0x0019, 0x100a].value = struct.pack('<H', 40) if ds[0x0019, 0x100a].VR in ('UN', 'OB') else 40
    ds[0x0019, 0x1029].value = [float(v) for v in (np.arange(40) * 17 % 40) * 25.0]
    ds.PixelData = mos.tobytes()
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = generate_uid(prefix='1.2.826.0.1.3680043.8.498.')
    ds.InstanceNumber = t + 1
    ds.AcquisitionNumber = t + 1
    ds.RepetitionTime = '1000'
    ds.save_as(os.path.join(out, 'series', 'vol_%05d.dcm' % (t + 1)), write_like_original=True)
