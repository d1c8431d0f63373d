# Reference data for tests/surface (CIFTI-2): run with Debian's python3 (nibabel, numpy).
# usage: cifti_ref.py OUTDIR [EXTRA.nii ...]
# Writes one file of each CIFTI-2 type with nibabel's cifti2 API (brain models
# on both surfaces plus subcortical voxels, parcels with vertices and voxels,
# series, scalars, labels) into OUTDIR, then for each of them and each EXTRA
# file writes NAME.npy (get_fdata(dtype=float32)) and NAME.axes.txt, the axes
# in the canonical text test_cifti.c prints from myelin's reader. OUTDIR/list.txt
# lists "path<TAB>tag".
import os, sys
import numpy as np
import nibabel as nb
from nibabel import cifti2 as ci

out = sys.argv[1]
rng = np.random.default_rng(5)
aff = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]])


def brain_models():
    left = np.zeros(40, bool)
    left[rng.choice(40, 25, replace=False)] = True
    right = np.zeros(30, bool)
    right[rng.choice(30, 20, replace=False)] = True
    thal = np.zeros((6, 5, 4), bool)
    thal[1:3, 2:4, 1:3] = True
    caud = np.zeros((6, 5, 4), bool)
    caud[4, 0:2, 0] = True
    return (ci.BrainModelAxis.from_mask(left, name='CortexLeft')
            + ci.BrainModelAxis.from_mask(right, name='CortexRight')
            + ci.BrainModelAxis.from_mask(thal, affine=aff, name='thalamus_left')
            + ci.BrainModelAxis.from_mask(caud, affine=aff, name='caudate_right'))


def parcels():
    names = ['V1_L', 'MT_R', 'thal+caud', 'mixed']
    voxels = np.empty(4, dtype=object)
    for i, v in enumerate([np.zeros((0, 3), int), np.zeros((0, 3), int),
                           np.array([[1, 2, 1], [2, 3, 2], [4, 0, 0]]), np.array([[0, 0, 0]])]):
        voxels[i] = v
    vertices = [{'CIFTI_STRUCTURE_CORTEX_LEFT': np.array([0, 3, 7, 9])},
                {'CIFTI_STRUCTURE_CORTEX_RIGHT': np.array([1, 2])}, {},
                {'CIFTI_STRUCTURE_CORTEX_LEFT': np.array([11]), 'CIFTI_STRUCTURE_CORTEX_RIGHT': np.array([5, 6])}]
    nvert = {'CIFTI_STRUCTURE_CORTEX_LEFT': 40, 'CIFTI_STRUCTURE_CORTEX_RIGHT': 30}
    return ci.ParcelsAxis(names, voxels, vertices, affine=aff, volume_shape=(6, 5, 4), nvertices=nvert)


def save(axes, intent, name, dtype=np.float32):
    shape = tuple(len(a) for a in axes)
    data = (rng.normal(size=shape) * 100).astype(dtype)
    if isinstance(axes[0], ci.LabelAxis):
        data = rng.integers(0, 3, size=shape).astype(dtype)
    img = ci.Cifti2Image(data, header=axes)
    img.nifti_header.set_intent(intent)
    path = os.path.join(out, name)
    nb.save(img, path)
    return path


def synth():
    bm, pa = brain_models(), parcels()
    series = ci.SeriesAxis(start=0.0, step=0.72, size=7)
    scalars = ci.ScalarAxis(['isc', 'r', 'alpha'])
    labels = ci.LabelAxis(['aparc', 'yeo'], [{0: ('???', (0, 0, 0, 0)), 1: ('V1', (1, 0, 0, 1)), 2: ('MT', (0, 0.5, 1, 1))},
                                             {0: ('none', (0, 0, 0, 0)), 1: ('net1', (0.2, 0.4, 0.6, 0.8)),
                                              2: ('net2', (1, 1, 0, 1))}])
    return [save((series, bm), 'ConnDenseSeries', 'x.dtseries.nii'),
            save((series, bm), 'ConnDenseSeries', 'f8.dtseries.nii', dtype=np.float64),
            save((scalars, bm), 'ConnDenseScalar', 'x.dscalar.nii'),
            save((labels, bm), 'ConnDenseLabel', 'x.dlabel.nii'),
            save((series, pa), 'ConnParcelSries', 'x.ptseries.nii'),
            save((scalars, pa), 'ConnParcelScalr', 'x.pscalar.nii'),
            save((pa, pa), 'ConnParcels', 'x.pconn.nii'),
            save((bm, bm), 'ConnDense', 'x.dconn.nii')]


def g(v):
    # a double as the integer of its bits: exact, and easy to print in C
    return str(int(np.array(float(v), '<f8').view('<i8')))


def axis_text(d, a):
    if isinstance(a, ci.BrainModelAxis):
        lines = [f'axis {d} brain_models {len(a)}']
        if a.volume_shape is not None:
            lines.append('volume ' + ' '.join(str(int(x)) for x in a.volume_shape) + ' '
                         + ' '.join(g(x) for x in np.asarray(a.affine).ravel()))
        for name, slc, sub in a.iter_structures():
            surf = bool(sub.surface_mask.all())
            if surf:
                lines.append(f'model {name} surface {slc.start} {len(sub)} {a.nvertices[name]}')
                lines.append('v ' + ' '.join(str(int(x)) for x in sub.vertex))
            else:
                lines.append(f'model {name} voxels {slc.start} {len(sub)} 0')
                lines.append('ijk ' + ' '.join(str(int(x)) for x in np.asarray(sub.voxel).ravel()))
        return lines
    if isinstance(a, ci.ParcelsAxis):
        lines = [f'axis {d} parcels {len(a)}']
        if a.volume_shape is not None:
            lines.append('volume ' + ' '.join(str(int(x)) for x in a.volume_shape) + ' '
                         + ' '.join(g(x) for x in np.asarray(a.affine).ravel()))
        for s, n in a.nvertices.items():
            lines.append(f'surface {s} {n}')
        for name, vox, verts in zip(a.name, a.voxels, a.vertices):
            lines.append(f'parcel {name} {len(vox)} {len(verts)}')
            if len(vox):
                lines.append('ijk ' + ' '.join(str(int(x)) for x in np.asarray(vox).ravel()))
            for s, v in verts.items():
                lines.append(f'verts {s} ' + ' '.join(str(int(x)) for x in v))
        return lines
    if isinstance(a, ci.SeriesAxis):
        return [f'axis {d} series {len(a)}', f'series {g(a.start)} {g(a.step)} {a.unit}']
    if isinstance(a, ci.LabelAxis):
        lines = [f'axis {d} labels {len(a)}']
        for name, lab in zip(a.name, a.label):
            lines.append(f'map {name}')
            for key, (ln, rgba) in lab.items():
                lines.append(f'label {key} {ln} ' + ' '.join(g(x) for x in rgba))
        return lines
    if isinstance(a, ci.ScalarAxis):
        return [f'axis {d} scalars {len(a)}'] + [f'map {n}' for n in a.name]
    raise ValueError(type(a))


files = synth() + sys.argv[2:]
with open(os.path.join(out, 'list.txt'), 'w') as lst:
    for i, path in enumerate(files):
        img = nb.load(path)
        tag = f'c{i}'
        np.save(os.path.join(out, tag + '.npy'), np.ascontiguousarray(img.get_fdata(dtype=np.float32)))
        lines = []
        for d in range(2):
            lines += axis_text(d, img.header.get_axis(d))
        with open(os.path.join(out, tag + '.axes.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        lst.write(f'{path}\t{tag}\n')
