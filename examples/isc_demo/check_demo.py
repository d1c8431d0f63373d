#!/usr/bin/python3
"""Checks the ISC demo's outputs: the Fisher-mean map must show the planted box.

    /usr/bin/python3 examples/isc_demo/check_demo.py OUT

Reads OUT/isc/isc_story.npy (npy_sink: the `summary` field, [V]) and, when
present, OUT/isc/isc_story.nii.gz (nifti_sink: one ISC volume per subject),
and OUT/truth.npy. Prints the
mean ISC inside and outside the box and exits 1 unless the box stands out.
"""
import os
import sys

import numpy as np


def main():
    out = sys.argv[1]
    truth = np.load(os.path.join(out, "truth.npy"))
    m = np.load(os.path.join(out, "isc", "isc_story.npy"))
    inside = truth.ravel() == 1
    print("ISC (Fisher mean) inside the planted box: %.3f (min %.3f)" % (m[inside].mean(), m[inside].min()))
    print("ISC outside: mean %.3f, max |r| %.3f" % (m[~inside].mean(), np.abs(m[~inside]).max()))
    ok = m[inside].min() > 0.3 and np.abs(m[~inside]).max() < 0.3
    nii = os.path.join(out, "isc", "isc_story.nii.gz")
    if os.path.exists(nii):
        try:
            import nibabel as nib
            img = nib.load(nii).get_fdata()
            img = img.mean(axis=3) if img.ndim > 3 else img  # one volume per subject
            print("NIfTI map: inside %.3f, outside %.3f" % (img[truth == 1].mean(), img[truth == 0].mean()))
            ok = ok and img[truth == 1].min() > 0.3
        except ImportError:
            pass
    print("planted region recovered" if ok else "planted region NOT recovered")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
