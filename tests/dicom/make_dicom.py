# Writes the derived DICOM test files of tests/data/dicom/ (run once; the
# outputs are committed). Debian's python3 with pydicom, numpy, nibabel.
# usage: make_dicom.py OUTDIR
# Each file keeps the header of an upstream test file (nibabel's
# siemens_dwi_0.dcm.gz mosaic, philips_mprage.dcm.gz enhanced MR, pydicom's
# MR_small.dcm) and gets small, known pixel data (the upstream pixel data of
# the mosaic and the enhanced image are all zeros), so the tests compare
# real values.
import copy, gzip, os, sys
import numpy as np
import pydicom
import nibabel as nb
from pydicom.uid import generate_uid

out = sys.argv[1]
nib_data = os.path.join(os.path.dirname(nb.__file__), 'nicom', 'tests', 'data')
pyd_data = os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files')


def pattern(shape, seed):
    g = np.indices(shape).astype(np.int64)
    v = 100 + seed * 50 + sum((k * 7 + 1) * g[i] for i, k in enumerate(range(len(shape))))
    return (v + (g[-1] * g[-2] + seed) % 13).astype(np.uint16)


# 1. A Siemens mosaic run: 3 volumes of 48 slices of 8 x 8 (a 7 x 7 mosaic:
# the slice count stays the CSA header's).
os.makedirs(os.path.join(out, 'mosaic_run'), exist_ok=True)
src = pydicom.dcmread(gzip.open(os.path.join(nib_data, 'siemens_dwi_0.dcm.gz')))
series = generate_uid(prefix='1.2.826.0.1.3680043.8.498.')
for t in range(3):
    d = copy.deepcopy(src)
    tiles = pattern((48, 8, 8), t)
    mos = np.zeros((56, 56), np.uint16)
    for k in range(48):
        r, c = divmod(k, 7)
        mos[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = tiles[k]
    d.Rows, d.Columns = 56, 56
    d[0x0019, 0x1029].value = [float(v) for v in (np.arange(48) * 17 % 48) * 40.0]
    d.PixelData = mos.tobytes()
    d.SeriesInstanceUID = series
    d.SOPInstanceUID = generate_uid(prefix='1.2.826.0.1.3680043.8.498.')
    d.InstanceNumber = t + 1
    d.AcquisitionNumber = t + 1
    d.RepetitionTime = '2000'
    d.save_as(os.path.join(out, 'mosaic_run', 'vol_%03d.dcm' % (t + 1)), write_like_original=True)

# 2. An enhanced (multi-frame) MR image: its 176 frames cut to 16 x 16.
src = pydicom.dcmread(gzip.open(os.path.join(nib_data, 'philips_mprage.dcm.gz')))
d = copy.deepcopy(src)
d.Rows, d.Columns = 16, 16
d.PixelData = pattern((176, 16, 16), 3).tobytes()
d.save_as(os.path.join(out, 'enhanced.dcm'), write_like_original=True)

# 3. A classic single-frame series: 4 slices x 3 volumes of 64 x 64 (names
# shuffled), slices acquired 0.5 s apart; and one slice turned 90 degrees.
os.makedirs(os.path.join(out, 'slices'), exist_ok=True)
src = pydicom.dcmread(os.path.join(pyd_data, 'MR_small.dcm'))
iop = np.array(src.ImageOrientationPatient, float)
normal = np.cross(iop[:3], iop[3:])
ipp0 = np.array(src.ImagePositionPatient, float)
series = generate_uid(prefix='1.2.826.0.1.3680043.8.498.')
names = [11, 3, 7, 0, 9, 5, 1, 10, 2, 8, 6, 4]
for t in range(3):
    for k in range(4):
        d = copy.deepcopy(src)
        d.PixelData = (pattern((64, 64), 4 * t + k).astype(np.int16)).tobytes()
        d.ImagePositionPatient = ['%.4f' % v for v in ipp0 + k * 0.8 * normal]
        d.SeriesInstanceUID = series
        d.SOPInstanceUID = generate_uid(prefix='1.2.826.0.1.3680043.8.498.')
        d.InstanceNumber = 4 * t + k + 1
        d.AcquisitionNumber = t + 1
        d.AcquisitionTime = '1200%02d.%d' % (2 * t, 5 * k) if k < 2 else '1200%02d.%d' % (2 * t + 1, 5 * (k - 2))
        d.save_as(os.path.join(out, 'slices', 'IM%04d.dcm' % names[4 * t + k]), write_like_original=True)
        if t == 0 and k == 2:
            d.ImageOrientationPatient = [str(v) for v in list(iop[3:]) + list(-iop[:3])]
            d.save_as(os.path.join(out, 'slice_rotated.dcm'), write_like_original=True)
