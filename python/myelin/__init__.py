"""myelin: read, write and run myelin streams from Python.

    import myelin
    for m in myelin.read("out/rec.mpk"): ...          # dicts, tensors as numpy arrays
    X, y, ctx = myelin.stack("samples.mpk", "x")        # one field of every message, stacked
    img = myelin.to_nifti(next(myelin.read("isc.mpk")))  # a map as a nibabel image
    myelin.write("in.mpk", [{"kind": "tensor", "data": np.eye(3, dtype="<f4")}])
    res = myelin.run("pipelines/isc.yaml", data="demo")  # OUT files, loaded on access

Depends on numpy and msgpack; to_nifti needs nibabel.
"""
from .arrays import stack
from .nifti import to_nifti, to_volume
from .runner import Outputs, RunError, load, run
from .stream import DTYPES, arrays, is_tensor, pack, read, tensor, unpack, write

__version__ = "0.1.0"
__all__ = ["read", "write", "stack", "to_nifti", "to_volume", "run", "load", "pack", "unpack",
           "tensor", "arrays", "is_tensor", "Outputs", "RunError", "DTYPES"]
