#!/usr/bin/python3
"""Checks the maps of pipelines/encoding_surface.yaml and
pipelines/info_content_surface.yaml against an independent computation from
the input files, and that the geometry came back unchanged.

    /usr/bin/python3 examples/surface_demo/check_demo.py DATA OUT encoding|info_content

encoding: per subject, the r of every vertex (GIFTI, both hemispheres), every
grayordinate (.dscalar.nii) and every parcel (.pscalar.nii; parcel means of
the .dtseries over the .dlabel computed here) equals sklearn's: word events
summed per TR, FIR delays 1-3 (zero padded), 5 contiguous folds,
StandardScaler on each training fold, RidgeCV(alphas=logspace(-1, 8, 10),
alpha_per_target=True), Pearson r on the held-out fold, mean over folds.
Also: the planted patches score r > 0.5 and the rest < 0.3 on average.

info_content: the `regional` map of every run (mean surprisal per vertex /
parcel, in nats) equals numpy's: the subject's rest run demeaned, clipped to
[max(min, -4 sd), min(max, 4 sd)], Gaussian KDE with Silverman's bandwidth
(1.06 sd n^-1/5 of the clipped series); every run demeaned, clipped with
those limits, -log density averaged over time.

Geometry: each .func.gii has the mesh's 42 values and its hemisphere's
AnatomicalStructurePrimary; each .dscalar.nii's brain-model axis equals the
.dtseries'; each .pscalar.nii's parcel axis has the .dlabel's parcel names
with their vertices and voxels. Needs numpy, nibabel, msgpack (and sklearn
for encoding). Exits 1 on the first mismatch, naming it.
"""
import glob
import os
import sys

import msgpack
import nibabel as nb
import numpy as np

NV = 42
PATCH = {"L": np.arange(0, 10), "R": np.arange(20, 30)}
ATOL = 2e-5  # the maps are float32


def fail(msg):
    sys.exit(f"check_demo: {msg}")


def gifti_runs(data, task):
    """{subject: [T, 84]} from the L + R files, and the files' structures."""
    out = {}
    for f in sorted(glob.glob(f"{data}/gifti/sub-*/func/*_task-{task}_*hemi-L_bold.func.gii")):
        sub = os.path.basename(f).split("_")[0][4:]
        rows = [np.stack([a.data for a in nb.load(f.replace("hemi-L", "hemi-" + h)).darrays]) for h in ("L", "R")]
        out[sub] = np.concatenate(rows, 1).astype(np.float64)
    return out


def cifti_runs(data, task):
    out = {}
    for f in sorted(glob.glob(f"{data}/cifti/sub-*/func/*_task-{task}_*bold.dtseries.nii")):
        out[os.path.basename(f).split("_")[0][4:]] = nb.load(f)
    return out


def parcel_means(img, data):
    """The .dtseries' parcel means over the .dlabel (float32, as parcellate), names, keys."""
    lab = nb.load(f"{data}/cifti_atlas.dlabel.nii")
    key = lab.get_fdata()[0].round().astype(int)
    keys = sorted(set(key[key > 0]))
    x = img.get_fdata(dtype=np.float32)
    means = np.stack([x[:, key == k].astype(np.float64).mean(1) for k in keys], 1).astype(np.float32)
    names = [lab.header.get_axis(0).label[0][k][0] for k in keys]
    return means.astype(np.float64), names, keys, key


def pearson(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    den = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(0) / den, 0.0)


def encode(X, Y):
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler
    rs = []
    for tr, te in KFold(5).split(X):
        sc = StandardScaler().fit(X[tr])
        m = RidgeCV(alphas=np.logspace(-1, 8, 10), alpha_per_target=True).fit(sc.transform(X[tr]), Y[tr])
        rs.append(pearson(Y[te], m.predict(sc.transform(X[te]))))
    return np.mean(rs, 0)


def design(data, T, tr):
    m = next(msgpack.Unpacker(open(f"{data}/features.mpk", "rb"), raw=False))
    onset = np.frombuffer(m["onset"]["data"], m["onset"]["dtype"])
    x = np.frombuffer(m["data"]["data"], m["data"]["dtype"]).reshape(m["data"]["shape"]).astype(np.float64)
    b = np.floor(onset / tr).astype(int)
    keep = (b >= 0) & (b < T)
    binned = np.zeros((T, x.shape[1]))
    np.add.at(binned, b[keep], x[keep])
    cols = []
    for d in (1, 2, 3):
        s = np.zeros_like(binned)
        s[d:] = binned[:-d]
        cols.append(s)
    return np.concatenate(cols, 1)


def same(got, want, what):
    if got.shape != want.shape:
        fail(f"{what}: shape {got.shape}, expected {want.shape}")
    d = np.abs(got - want).max()
    if not d <= ATOL:
        fail(f"{what}: max |diff| {d:.3g} from the reference (tolerance {ATOL})")
    return d


def load_gifti_map(path, hemi):
    if not os.path.exists(path):
        fail(f"{path} was not written")
    g = nb.load(path)
    s = g.meta.get("AnatomicalStructurePrimary")
    want = "CortexLeft" if hemi == "L" else "CortexRight"
    if s != want:
        fail(f"{path}: AnatomicalStructurePrimary {s!r}, expected {want!r}")
    got = np.stack([a.data for a in g.darrays]).astype(np.float64)
    if got.shape[-1] != NV:
        fail(f"{path}: {got.shape[-1]} vertices, the mesh has {NV}")
    return got[0]


def check_parcel_axis(path, names, keys, key, src):
    ax = nb.load(path).header.get_axis(1)
    if not isinstance(ax, nb.cifti2.ParcelsAxis) or list(ax.name) != names:
        fail(f"{path}: parcel axis {getattr(ax, 'name', ax)}, expected parcels {names}")
    bm = src.header.get_axis(1)
    for i, k in enumerate(keys):
        sel = key == k
        want_v = {}
        for n, v in zip(bm.name[sel], bm.vertex[sel]):
            if v >= 0:
                want_v.setdefault(n, []).append(v)
        got_v = {n: sorted(v.tolist()) for n, v in ax.vertices[i].items()}
        if got_v != {n: sorted(v) for n, v in want_v.items()}:
            fail(f"{path}: parcel {names[i]} has vertices {got_v}, expected {want_v}")
        want_x = sorted(map(tuple, bm.voxel[sel & (bm.vertex < 0)].tolist()))
        if sorted(map(tuple, ax.voxels[i].tolist())) != want_x:
            fail(f"{path}: parcel {names[i]} voxels differ")
    if ax.nvertices != {"CIFTI_STRUCTURE_CORTEX_LEFT": NV, "CIFTI_STRUCTURE_CORTEX_RIGHT": NV}:
        fail(f"{path}: nvertices {ax.nvertices}")


def check_encoding(data, out):
    d = f"{out}/encoding_surface"
    worst, patch_r, rest_r = 0.0, [], []
    for sub, Y in gifti_runs(data, "story").items():
        want = encode(design(data, Y.shape[0], 1.5), Y)
        for k, h in enumerate(("L", "R")):
            got = load_gifti_map(f"{d}/r_sub-{sub}_hemi-{h}.func.gii", h)
            worst = max(worst, same(got, want[k * NV:(k + 1) * NV], f"r_sub-{sub}_hemi-{h}"))
            inside = np.isin(np.arange(NV), PATCH[h])
            patch_r.append(got[inside].mean())
            rest_r.append(got[~inside].mean())
    for sub, img in cifti_runs(data, "story").items():
        Y = img.get_fdata(dtype=np.float32).astype(np.float64)
        X = design(data, Y.shape[0], 1.5)
        path = f"{d}/r_sub-{sub}.dscalar.nii"
        o = nb.load(path)
        if o.header.get_axis(1) != img.header.get_axis(1):
            fail(f"{path}: the brain-model axis differs from the .dtseries'")
        worst = max(worst, same(o.get_fdata()[0], encode(X, Y), f"r_sub-{sub}.dscalar"))
        means, names, keys, key = parcel_means(img, data)
        path = f"{d}/r_parcels_sub-{sub}.pscalar.nii"
        check_parcel_axis(path, names, keys, key, img)
        worst = max(worst, same(nb.load(path).get_fdata()[0], encode(X, means), f"r_parcels_sub-{sub}"))
    if not (np.mean(patch_r) > 0.5 and np.mean(rest_r) < 0.3):
        fail(f"planted patches: mean r {np.mean(patch_r):.3f} (want > 0.5), elsewhere {np.mean(rest_r):.3f}")
    print(f"encoding: every map equals sklearn's (max |diff| {worst:.2g}); patches r {np.mean(patch_r):.2f}, "
          f"elsewhere {np.mean(rest_r):.2f}; geometry kept")


def regional(ref, run, k=4.0):
    r = ref - ref.mean(0)
    m, sd = r.mean(0), r.std(0)
    lo, hi = np.maximum(r.min(0), m - k * sd), np.minimum(r.max(0), m + k * sd)
    r = np.clip(r, lo, hi)
    h = 1.06 * r.std(0) * len(r) ** -0.2
    x = np.clip(run - run.mean(0), lo, hi)
    z = (x[:, None, :] - r[None, :, :]) / h  # [T, Tref, N]
    p = np.exp(-0.5 * z ** 2).mean(1) / (np.sqrt(2 * np.pi) * h)
    return -np.log(p).mean(0)


def check_info(data, out):
    d = f"{out}/info_content_surface"
    worst = 0.0
    rest_g, rest_c = gifti_runs(data, "rest"), cifti_runs(data, "rest")
    for task in ("story", "rest"):
        for sub, Y in gifti_runs(data, task).items():
            want = regional(rest_g[sub], Y)
            for k, h in enumerate(("L", "R")):
                got = load_gifti_map(f"{d}/info_sub-{sub}_task-{task}_hemi-{h}.func.gii", h)
                worst = max(worst, same(got, want[k * NV:(k + 1) * NV], f"info_sub-{sub}_task-{task}_hemi-{h}"))
        for sub, img in cifti_runs(data, task).items():
            means, names, keys, key = parcel_means(img, data)
            ref = parcel_means(rest_c[sub], data)[0]
            path = f"{d}/info_parcels_sub-{sub}_task-{task}.pscalar.nii"
            check_parcel_axis(path, names, keys, key, img)
            o = nb.load(path)
            if list(o.header.get_axis(0).name) != ["info regional"]:
                fail(f"{path}: map names {list(o.header.get_axis(0).name)}, expected ['info regional']")
            worst = max(worst, same(o.get_fdata()[0], regional(ref, means), f"info_parcels_sub-{sub}_task-{task}"))
    print(f"info_content: every regional map equals numpy's (max |diff| {worst:.2g}); geometry kept")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[3] not in ("encoding", "info_content"):
        sys.exit(__doc__)
    (check_encoding if sys.argv[3] == "encoding" else check_info)(sys.argv[1], sys.argv[2])
