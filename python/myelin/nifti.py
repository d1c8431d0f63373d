"""Maps back onto their voxel grid: to_volume (numpy) and to_nifti (nibabel).

A `map`, `run` or `volume` message carries a `geometry` (the repository's
schemas/geometry.md). Its volume model is painted back as nifti_sink does:
`dims` + `affine` + `voxels` (absent = every voxel), or a NIfTI `atlas`
whose parcels receive the columns (`values` gives each column's label, else
the atlas's labels > 0 in ascending order). Everything before the last axis
of `data` becomes volumes along the 4th dimension.
"""
import os

import numpy as np

from .stream import arrays, is_tensor


def _message(msg):
    if not isinstance(msg, dict) or "geometry" not in msg or "data" not in msg:
        raise ValueError("expected a map/run/volume message with 'data' and 'geometry'")
    if is_tensor(msg["data"]):
        msg = arrays(msg)
    return msg


def to_volume(msg, fill=0.0, atlas=None):
    """(volume, affine): volume float32 [X, Y, Z] for data [V], or
    [X, Y, Z, N] for data [..., V] (N = the product of the leading axes);
    voxels the map does not cover hold `fill`. `atlas` overrides the path
    in geometry.atlas (a relative path there is taken from the working folder)."""
    msg = _message(msg)
    g = msg["geometry"]
    model = g.get("model", "volume")
    if model != "volume":
        raise ValueError("geometry model %r has no voxel grid (only 'volume' maps become NIfTI images)" % model)
    data = np.asarray(msg["data"], dtype=np.float32)
    rows = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data[None, :]
    V = rows.shape[1]
    if "atlas" in g or atlas is not None:
        import nibabel as nib
        img = nib.load(os.fspath(atlas if atlas is not None else g["atlas"]))
        labels = np.asarray(img.dataobj).astype(np.int64)
        if labels.ndim > 3:
            labels = labels[..., 0]
        affine = np.asarray(img.affine, dtype=np.float64)
        values = np.asarray(g["values"]) if "values" in g else np.unique(labels[labels > 0])
        if len(values) != V:
            raise ValueError("atlas has %d parcels, the data %d columns" % (len(values), V))
        dims = labels.shape
        flat = labels.reshape(-1)
        order = np.argsort(values)
        pos = np.searchsorted(values[order], flat)
        pos = np.clip(pos, 0, V - 1)
        hit = values[order][pos] == flat
        vol = np.full((rows.shape[0], flat.size), fill, dtype=np.float32)
        vol[:, hit] = rows[:, order[pos[hit]]]
    else:
        dims = tuple(int(d) for d in g["dims"])
        affine = np.asarray(g["affine"], dtype=np.float64) if "affine" in g else np.eye(4)
        size = int(np.prod(dims))
        voxels = np.asarray(g["voxels"], dtype=np.int64) if "voxels" in g else np.arange(size)
        if len(voxels) != V:
            raise ValueError("geometry has %d voxels, the data %d columns" % (len(voxels), V))
        if voxels.size and (voxels.min() < 0 or voxels.max() >= size):
            raise ValueError("geometry.voxels: index %d outside the %s grid" % (voxels.max(), list(dims)))
        vol = np.full((rows.shape[0], size), fill, dtype=np.float32)
        vol[:, voxels] = rows
    vol = vol.reshape((rows.shape[0],) + tuple(dims))
    vol = vol[0] if data.ndim == 1 else np.moveaxis(vol, 0, -1)
    return vol, affine


def to_nifti(msg, fill=0.0, atlas=None):
    """A nibabel Nifti1Image of a map/run/volume message (needs nibabel)."""
    try:
        import nibabel as nib
    except ImportError as e:
        raise ImportError("myelin.to_nifti needs nibabel (python3-nibabel, or pip install nibabel)") from e
    vol, affine = to_volume(msg, fill=fill, atlas=atlas)
    img = nib.Nifti1Image(vol, affine)
    img.header.set_xyzt_units("mm", "sec")
    if vol.ndim == 4 and msg.get("kind") == "run" and "tr" in msg:
        zooms = list(img.header.get_zooms())
        zooms[3] = float(msg["tr"])
        img.header.set_zooms(zooms)
    return img
