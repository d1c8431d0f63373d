# Reference data for tests/surface (GIFTI): run with Debian's python3 (nibabel, numpy).
# usage: gifti_ref.py OUTDIR [GIFTI_DATA_DIR]
# Writes synthetic GIFTI files into OUTDIR covering what nibabel's own test
# files do not (big-endian, column-major, every encoding x datatype, an
# external big-endian column-major file), then for every .gii file under
# GIFTI_DATA_DIR (default nibabel/gifti/tests/data: the repository keeps a
# copy in tests/data/nibabel/gifti) and OUTDIR writes, per DataArray k, NAME.k.npy
# (nibabel's darrays[k].data, C order) and NAME.meta.txt: one line per
# metadata entry, label and transform, "scope<TAB>hex(key)<TAB>hex(value)"
# (scope: file, array<k>, label). OUTDIR/list.txt lists "path<TAB>narrays".
import os, sys
import numpy as np
import nibabel as nb
from nibabel.gifti import GiftiDataArray, GiftiImage, GiftiMetaData, GiftiLabel, GiftiLabelTable

out = sys.argv[1]
rng = np.random.default_rng(11)
data_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(nb.__file__), 'gifti', 'tests', 'data')


def synth():
    files = []
    for dt in ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float32', 'float64']:
        for enc in ['ASCII', 'B64BIN', 'B64GZ']:
            for endian in ['big', 'little']:
                for order in ['RowMajorOrder', 'ColumnMajorOrder']:
                    info = np.iinfo(dt) if dt[0] in 'iu' else None
                    shape = (7, 3)
                    if info is not None:
                        a = rng.integers(max(info.min, -2**31), min(info.max, 2**31 - 1), size=shape, dtype=dt)
                    else:
                        a = (rng.normal(size=shape) * 1e3).astype(dt)
                    d1 = GiftiDataArray(a, intent='NIFTI_INTENT_SHAPE', encoding=enc, endian=endian, ordering=order,
                                        meta=GiftiMetaData({'Name': f'{dt} {enc}', 'escaped': '<&> "q"'}))
                    d2 = GiftiDataArray(a[:, 0].copy(), intent='NIFTI_INTENT_TIME_SERIES', encoding=enc,
                                        endian=endian, ordering=order)
                    img = GiftiImage(darrays=[d1, d2], meta=GiftiMetaData({'AnatomicalStructurePrimary': 'CortexRight'}))
                    name = os.path.join(out, f'synth_{dt}_{enc}_{endian}_{order[:3]}.gii')
                    nb.save(img, name)
                    files.append(name)
    # a label file with a colour table
    lt = GiftiLabelTable()
    for key, nm in [(0, '???'), (3, 'V1'), (7, 'MT+')]:
        lab = GiftiLabel(key=key, red=0.25, green=0.5, blue=0.75, alpha=1.0)
        lab.label = nm
        lt.labels.append(lab)
    keys = rng.choice(np.array([0, 3, 7], dtype=np.int32), size=50)
    img = GiftiImage(darrays=[GiftiDataArray(keys, intent='NIFTI_INTENT_LABEL', encoding='B64GZ')], labeltable=lt)
    name = os.path.join(out, 'synth.label.gii')
    nb.save(img, name)
    files.append(name)
    # ExternalFileBinary, big-endian, column-major, at an offset
    a = (rng.normal(size=(4, 5)) * 10).astype('>f8')
    with open(os.path.join(out, 'ext_be.dat'), 'wb') as f:
        f.write(b'\0' * 16)
        f.write(np.asfortranarray(a).tobytes(order='F'))
    xml = f'''<?xml version="1.0" encoding="UTF-8"?>
<GIFTI Version="1.0" NumberOfDataArrays="1">
 <DataArray Intent="NIFTI_INTENT_NONE" DataType="NIFTI_TYPE_FLOAT64" ArrayIndexingOrder="ColumnMajorOrder"
  Dimensionality="2" Dim0="4" Dim1="5" Encoding="ExternalFileBinary" Endian="BigEndian"
  ExternalFileName="ext_be.dat" ExternalFileOffset="16"><Data/></DataArray>
</GIFTI>
'''
    name = os.path.join(out, 'synth_external_be.gii')
    with open(name, 'w') as f:
        f.write(xml)
    files.append(name)
    return files


def hexs(s):
    return s.encode('utf-8').hex()


def dump(path, tag):
    # mmap=False: with its default mmap=True nibabel 5.0 maps an external
    # ColumnMajorOrder array in C order (ignoring ArrayIndexingOrder), unlike
    # its own mmap=False path and the GIFTI standard; myelin follows both.
    img = nb.load(path, mmap=False)
    lines = []
    for k, v in img.meta.items():
        lines.append(f'file\t{hexs(k)}\t{hexs(v)}')
    for lab in img.labeltable.labels:
        lines.append(f'label\t{hexs(str(lab.key))}\t{hexs(lab.label)}')
    for i, d in enumerate(img.darrays):
        for k, v in d.meta.items():
            lines.append(f'array{i}\t{hexs(k)}\t{hexs(v)}')
        data = np.ascontiguousarray(d.data)
        if data.dtype.byteorder == '>':
            data = data.astype(data.dtype.newbyteorder('<'))
        np.save(os.path.join(out, f'{tag}.{i}.npy'), data)
    with open(os.path.join(out, f'{tag}.meta.txt'), 'w') as f:
        f.write(''.join(l + '\n' for l in lines))
    return len(img.darrays)


files = [os.path.join(data_dir, f) for f in sorted(os.listdir(data_dir)) if f.endswith(('.gii', '.gii.gz', '.gii.bz2'))] + synth()
with open(os.path.join(out, 'list.txt'), 'w') as lst:
    for i, path in enumerate(files):
        tag = f'ref{i}'
        n = dump(path, tag)
        lst.write(f'{path}\t{tag}\t{n}\n')
