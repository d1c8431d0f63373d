#!/usr/bin/python3
"""Synthetic surface and grayordinate data for pipelines/encoding_surface.yaml
and pipelines/info_content_surface.yaml (and tests/surface/test_surface_pipelines.c).

    /usr/bin/python3 examples/surface_demo/make_demo.py OUT

writes, for 3 subjects, a story task (100 TRs of 1.5 s, with word events)
and a rest task (100 TRs):

  OUT/features.mpk   one `features` message for task story: word events
                     onset <f8 [W] (seconds) + data <f4 [W, 4]
  OUT/gifti/         BIDS: sub-0S/func/sub-0S_task-T_space-fsaverage1_hemi-{L,R}_bold.func.gii,
                     one value per vertex of a 42-vertex icosphere per
                     hemisphere (fsaverage's ico1 size), TR in task-T_bold.json
  OUT/meshes/        hemi-{L,R}_sphere.surf.gii: those icospheres (for viewers)
  OUT/cifti/         BIDS: sub-0S/func/sub-0S_task-T_space-demo_bold.dtseries.nii:
                     left cortex 36 of 42 vertices, right cortex 38 of 42
                     (a medial wall left out), left thalamus 8 voxels of a
                     4x4x4 grid; series step 1.5 s
  OUT/cifti_atlas.dlabel.nii   6 parcels over those grayordinates

In a patch of each hemisphere (and in the thalamus) the story runs respond
to the word features binned per TR, delayed by 1 and 2 TRs, plus noise;
elsewhere noise only. The rest runs are noise with a slow drift (the
reference densities of info_content). Needs numpy, nibabel and msgpack.
"""
import json
import os
import sys

import msgpack
import nibabel as nb
import numpy as np
from nibabel import cifti2 as ci

TR, T, F, NSUB = 1.5, 100, 4, 3
NV = 42  # vertices per hemisphere (ico1)
PATCH = {"L": np.arange(0, 10), "R": np.arange(20, 30)}
AFF = np.array([[2.0, 0, 0, -4], [0, 2.0, 0, -4], [0, 0, 2.0, -4], [0, 0, 0, 1]])


def tensor(a):
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def icosphere():
    """An icosahedron subdivided once: 42 vertices, 80 triangles (fsaverage's ico1)."""
    p = (1 + 5 ** 0.5) / 2
    v = [(-1, p, 0), (1, p, 0), (-1, -p, 0), (1, -p, 0), (0, -1, p), (0, 1, p), (0, -1, -p), (0, 1, -p),
         (p, 0, -1), (p, 0, 1), (-p, 0, -1), (-p, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
         (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
         (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    v = [np.array(x, float) / np.linalg.norm(x) for x in v]
    mid, faces = {}, []

    def middle(a, b):
        k = (min(a, b), max(a, b))
        if k not in mid:
            m = v[a] + v[b]
            v.append(m / np.linalg.norm(m))
            mid[k] = len(v) - 1
        return mid[k]

    for a, b, c in f:
        ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
        faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
    return (np.array(v) * 100).astype(np.float32), np.array(faces, np.int32)


def save_func(path, data, structure):
    img = nb.gifti.GiftiImage(meta=nb.gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure}))
    for row in data:
        img.add_gifti_data_array(nb.gifti.GiftiDataArray(row.astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES",
                                                         datatype="NIFTI_TYPE_FLOAT32"))
    nb.save(img, path)


def brain_models():
    left = np.ones(NV, bool)
    left[[36, 37, 38, 39, 40, 41]] = False
    right = np.ones(NV, bool)
    right[[0, 1, 2, 3]] = False
    thal = np.zeros((4, 4, 4), bool)
    thal[1:3, 1:3, 1:3] = True
    return (ci.BrainModelAxis.from_mask(left, name="CortexLeft")
            + ci.BrainModelAxis.from_mask(right, name="CortexRight")
            + ci.BrainModelAxis.from_mask(thal, affine=AFF, name="thalamus_left"))


def main(out):
    rng = np.random.default_rng(20)
    W = 260
    onset = np.sort(rng.uniform(0, T * TR, W))
    feats = rng.standard_normal((W, F)).astype(np.float32)
    binned = np.zeros((T, F))
    np.add.at(binned, np.floor(onset / TR).astype(int), feats.astype(np.float64))
    lagged = np.zeros((T, F))
    lagged[1:] += binned[:-1]
    lagged[2:] += 0.5 * binned[:-2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "features.mpk"), "wb") as f:
        f.write(msgpack.packb({"kind": "features", "task": "story", "tr": TR, "onset": tensor(onset),
                               "data": tensor(feats)}))

    def series(n, task, planted):
        """[T, n]: noise, plus the planted response in `planted` (story) or a slow drift (rest)."""
        y = rng.standard_normal((T, n))
        if task == "story":
            w = rng.standard_normal((F, len(planted)))
            y[:, planted] += 2.0 * lagged @ w / np.sqrt(F)
        else:
            y += np.sin(np.arange(T)[:, None] * rng.uniform(0.05, 0.2, n)) * rng.uniform(0.5, 2, n)
        return (10 + y).astype(np.float32)

    xyz, tri = icosphere()
    os.makedirs(os.path.join(out, "meshes"), exist_ok=True)
    for h, s in (("L", "CortexLeft"), ("R", "CortexRight")):
        img = nb.gifti.GiftiImage(meta=nb.gifti.GiftiMetaData({"AnatomicalStructurePrimary": s}))
        img.add_gifti_data_array(nb.gifti.GiftiDataArray(xyz, intent="NIFTI_INTENT_POINTSET"))
        img.add_gifti_data_array(nb.gifti.GiftiDataArray(tri, intent="NIFTI_INTENT_TRIANGLE"))
        nb.save(img, os.path.join(out, "meshes", f"hemi-{h}_sphere.surf.gii"))

    bm = brain_models()
    gray = np.concatenate([bm.vertex[bm.name == "CIFTI_STRUCTURE_CORTEX_LEFT"],
                           NV + bm.vertex[bm.name == "CIFTI_STRUCTURE_CORTEX_RIGHT"]])
    ncx = len(gray)
    planted_gray = np.concatenate([np.flatnonzero(np.isin(gray, PATCH["L"])),
                                   np.flatnonzero(np.isin(gray, NV + PATCH["R"])),
                                   np.arange(ncx, len(bm))[:4]])
    for kind in ("gifti", "cifti"):
        os.makedirs(os.path.join(out, kind), exist_ok=True)
        for task in ("story", "rest"):
            with open(os.path.join(out, kind, f"task-{task}_bold.json"), "w") as f:
                json.dump({"RepetitionTime": TR, "TaskName": task}, f)
    for sub in range(1, NSUB + 1):
        for kind in ("gifti", "cifti"):
            os.makedirs(os.path.join(out, kind, f"sub-0{sub}", "func"), exist_ok=True)
        for task in ("story", "rest"):
            base = os.path.join(out, "gifti", f"sub-0{sub}", "func", f"sub-0{sub}_task-{task}_space-fsaverage1")
            for h, s in (("L", "CortexLeft"), ("R", "CortexRight")):
                save_func(f"{base}_hemi-{h}_bold.func.gii", series(NV, task, PATCH[h]), s)
            d = series(len(bm), task, planted_gray)
            img = ci.Cifti2Image(d, header=(ci.SeriesAxis(0, TR, T), bm))
            img.nifti_header.set_intent("ConnDenseSeries")
            nb.save(img, os.path.join(out, "cifti", f"sub-0{sub}", "func",
                                      f"sub-0{sub}_task-{task}_space-demo_bold.dtseries.nii"))
    # 6 parcels: left cortex in 3 (by vertex index), right in 2, the thalamus
    key = np.empty(len(bm), np.float32)
    vert = bm.vertex
    key[bm.name == "CIFTI_STRUCTURE_CORTEX_LEFT"] = 1 + vert[bm.name == "CIFTI_STRUCTURE_CORTEX_LEFT"] // 12
    key[bm.name == "CIFTI_STRUCTURE_CORTEX_RIGHT"] = 4 + vert[bm.name == "CIFTI_STRUCTURE_CORTEX_RIGHT"] // 21
    key[bm.name == "CIFTI_STRUCTURE_THALAMUS_LEFT"] = 6
    names = ["???", "L_front", "L_mid", "L_back", "R_front", "R_back", "thalamus_L"]
    table = {k: (n, (k / 6, 0.5, 1 - k / 6, 1.0 if k else 0.0)) for k, n in enumerate(names)}
    lab = ci.Cifti2Image(key[None], header=(ci.LabelAxis(["demo_parcels"], [table]), bm))
    lab.nifti_header.set_intent("ConnDenseLabel")
    nb.save(lab, os.path.join(out, "cifti_atlas.dlabel.nii"))
    print(f"wrote {out}: {NSUB} subjects x (story, rest), GIFTI {NV}+{NV} vertices, CIFTI {len(bm)} grayordinates")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
