# Reference volumes for tests/dicom: run with Debian's python3 (numpy, nibabel).
# usage: dicom_ref.py dcm2niix|nibabel PREFIX FILE...
# PREFIX.dims ("nx ny nz T") and PREFIX.aff (16 float64, row-major) describe
# myelin's volume of FILE...; this converts the same files with dcm2niix (a
# NIfTI, read with nibabel; -p n: Philips values by RescaleSlope, as nibabel) or with nibabel's nicom wrappers (single file),
# maps the reference's voxel axes onto myelin's (they may differ by axis
# permutations and flips: the map is inv(ref_affine) @ myelin_affine, which
# must be a signed permutation with an integer shift) and writes
# PREFIX.ref.f32 (the reference data in myelin's layout, [T][x][y][z]) and
# PREFIX.ref.aff (the reference affine expressed on myelin's axes).
# Exit 0 when written, 3 when the tool cannot convert the files, 4 when the
# two grids are not related by a permutation (different geometry).
import glob, os, shutil, subprocess, sys, tempfile
import numpy as np
import nibabel as nb

tool, prefix, files = sys.argv[1], sys.argv[2], sys.argv[3:]
nx, ny, nz, T = (int(v) for v in open(prefix + '.dims').read().split())
ours = np.fromfile(prefix + '.aff', '<f8').reshape(4, 4)

if tool == 'dcm2niix':
    tmp = tempfile.mkdtemp()
    try:
        os.mkdir(os.path.join(tmp, 'in'))
        for i, f in enumerate(files):
            shutil.copy(f, os.path.join(tmp, 'in', '%05d_%s' % (i, os.path.basename(f))))
        r = subprocess.run(['dcm2niix', '-z', 'n', '-b', 'n', '-p', 'n', '-f', 'ref', '-o', tmp, os.path.join(tmp, 'in')],
                           capture_output=True, text=True)
        out = sorted(glob.glob(os.path.join(tmp, 'ref*.nii')))
        if r.returncode != 0 or len(out) != 1:
            print('dcm2niix: no single NIfTI (exit %d): %s' % (r.returncode, r.stdout[-300:]))
            sys.exit(3)
        img = nb.load(out[0])
        data, aff = np.asarray(img.get_fdata(dtype=np.float32)), img.affine
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
else:
    from nibabel.nicom import dicomwrappers as dw
    try:
        w = dw.wrapper_from_file(files[0])
        data = np.asarray(w.get_data(), dtype=np.float32)
        aff = np.diag([-1.0, -1.0, 1.0, 1.0]) @ w.affine
    except Exception as e:
        print('nibabel cannot read %s: %s' % (files[0], e))
        sys.exit(3)

while data.ndim < 4:
    data = data[..., None]
M = np.linalg.inv(aff) @ ours
P, t = np.round(M[:3, :3]), np.round(M[:3, 3])
perm = (np.abs(P).sum(0) == 1).all() and (np.abs(P).sum(1) == 1).all()
if not perm or np.abs(M[:3, :3] - P).max() > 2e-3 or np.abs(M[:3, 3] - t).max() > 0.05:
    print('grids differ: inv(ref) @ ours =\n%s' % M)
    sys.exit(4)
ii, jj, kk = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing='ij')
src = np.einsum('ab,bxyz->axyz', P, np.stack([ii, jj, kk])) + t[:, None, None, None]
src = src.astype(int)
if (src < 0).any() or any((src[a] >= data.shape[a]).any() for a in range(3)) or data.shape[3] != T:
    print('grids differ: shape %s vs %s' % (data.shape, (nx, ny, nz, T)))
    sys.exit(4)
ref = data[src[0], src[1], src[2], :]  # [x, y, z, T]
np.ascontiguousarray(np.moveaxis(ref, 3, 0), dtype='<f4').tofile(prefix + '.ref.f32')
A = np.eye(4)
A[:3, :3], A[:3, 3] = P, t
(aff @ A).astype('<f8').tofile(prefix + '.ref.aff')
print('ok')
