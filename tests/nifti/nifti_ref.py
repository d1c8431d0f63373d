# Reference data for tests/nifti: run with Debian's python3 (nibabel, numpy).
# usage: nifti_ref.py OUTDIR
# Writes synthetic NIfTI files of every real datatype in both byte orders
# (NIfTI-1 and NIfTI-2, plain and gzip, scaled and not, one multi-member gzip)
# into OUTDIR, then for every file under nibabel/tests/data and OUTDIR writes
# NAME.f32 (get_fdata(dtype=float32) raveled in file order) and NAME.aff
# (16 float64, nibabel's affine) and lists them in OUTDIR/list.txt as
# "path<TAB>kind" where kind is data (full check) or header (a .hdr without
# its .img).
import gzip, os, sys
import numpy as np
import nibabel as nb

out = sys.argv[1]
rng = np.random.default_rng(7)
data_dir = os.path.join(os.path.dirname(nb.__file__), 'tests', 'data')

def synth():
    files = []
    aff = np.array([[-2.5, 0.1, 0, 90], [0.05, 2.5, 0.3, -120], [0, -0.2, 3.0, -60], [0, 0, 0, 1]])
    for dt in ['u1', 'i1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f4', 'f8']:
        for endian in '<>':
            for klass, tag in [(nb.Nifti1Image, 'n1'), (nb.Nifti2Image, 'n2')]:
                info = np.iinfo(dt) if dt[0] in 'iu' else None
                shape = (5, 4, 3, 2)
                if info is not None:
                    lo, hi = max(info.min, -30000), min(info.max, 60000)
                    arr = rng.integers(lo, hi, size=shape).astype(dt)
                else:
                    arr = rng.normal(size=shape).astype(dt) * 100
                hdr = klass.header_class(endianness=endian)
                hdr.set_data_dtype(dt)
                img = klass(arr, aff, header=hdr)
                img.set_sform(aff, code=2)
                if dt in ('i2', 'u1'):
                    img.header.set_slope_inter(0.5, -3.0)
                name = os.path.join(out, f'synth_{tag}_{dt}_{"be" if endian == ">" else "le"}.nii')
                if dt in ('f4', 'i2'):
                    name += '.gz'
                nb.save(img, name)
                files.append(name)
    # qform only (sform code 0), 3-D
    img = nb.Nifti1Image(rng.normal(size=(6, 5, 4)).astype('f4'), None)
    q = np.array([[0, -2, 0, 10], [2, 0, 0, -5], [0, 0, 3, 7], [0, 0, 0, 1]], float)
    img.header.set_qform(q, code=1)
    img.header.set_sform(None, code=0)
    name = os.path.join(out, 'synth_qform.nii')
    nb.save(img, name)
    files.append(name)
    # .hdr/.img pairs (NIfTI-1 and -2, big-endian int16 with scaling)
    for klass, tag in [(nb.Nifti1Pair, 'p1'), (nb.Nifti2Pair, 'p2')]:
        hdr = klass.header_class(endianness='>')
        hdr.set_data_dtype('i2')
        img = klass(rng.integers(-500, 500, size=(4, 3, 5, 2)).astype('i2'), aff, header=hdr)
        img.header.set_slope_inter(2.0, 1.0)
        name = os.path.join(out, f'synth_pair_{tag}.hdr')
        nb.save(img, name)
        files.append(name)
    # multi-member gzip (streamed inflate)
    raw = open(os.path.join(data_dir, 'functional.nii'), 'rb').read()
    name = os.path.join(out, 'synth_multimember.nii.gz')
    with open(name, 'wb') as f:
        f.write(gzip.compress(raw[:10000]))
        f.write(gzip.compress(raw[10000:]))
    files.append(name)
    return files

files = synth()
with open(os.path.join(out, 'list.txt'), 'w') as lst:
    for f in sorted(os.listdir(data_dir)) + files:
        path = f if os.path.isabs(f) else os.path.join(data_dir, f)
        base = os.path.basename(path)
        if not (base.endswith('.nii') or base.endswith('.nii.gz') or base.endswith('.hdr')):
            continue
        try:
            if base.endswith('.dconn.nii'):
                img = nb.Nifti2Image.from_filename(path)
            else:
                img = nb.load(path)
        except Exception:
            continue
        if not isinstance(img, (nb.Nifti1Image, nb.Nifti2Image, nb.Nifti1Pair, nb.Nifti2Pair)):
            continue
        ref = os.path.join(out, base)
        np.asarray(img.affine, '<f8').tofile(ref + '.aff')
        kind = 'header'
        if base.endswith('.dconn.nii'):
            kind = 'cifti'  # a CIFTI-2 file: the reader must refuse it by name
        elif not base.endswith('.hdr') or os.path.exists(path[:-4] + '.img'):
            d = img.get_fdata(dtype=np.float32)
            np.asarray(d.ravel(order='F'), '<f4').tofile(ref + '.f32')
            kind = 'data'
        lst.write(f'{path}\t{kind}\t{ref}\n')
