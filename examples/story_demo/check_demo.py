#!/usr/bin/python3
"""Checks the story_to_brain demo's maps:

    /usr/bin/python3 examples/story_demo/check_demo.py DATA OUT

OUT/story_to_brain/group_best_layer_none.nii.gz must give the planted layer
to at least 80% of the planted box's voxels, and no more than 5% of the
voxels outside the box may be significant in any layer
(group_score_L.nii.gz: nonzero = significant). Exit status 1 otherwise.
"""
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np

data, out = sys.argv[1], sys.argv[2]
truth = np.load(os.path.join(data, "truth.npy")).astype(bool)
layer = json.load(open(os.path.join(data, "planted.json")))["layer"]
d = os.path.join(out, "story_to_brain")
best = np.asarray(nib.load(os.path.join(d, "group_best_layer_none.nii.gz")).dataobj)
scores = sorted(glob.glob(os.path.join(d, "group_score_*.nii.gz")))
sig_any = np.zeros(truth.shape, bool)
for f in scores:
    sig_any |= np.asarray(nib.load(f).dataobj) != 0
hit = float(np.mean(best[truth] == layer))
false = float(np.mean(sig_any[~truth]))
vals, counts = np.unique(best[truth], return_counts=True)
print(f"{len(scores)} layer maps; planted layer {layer}: best in {100 * hit:.0f}% of the box "
      f"(box's best layers {dict(zip(vals.astype(int).tolist(), counts.tolist()))}); "
      f"{100 * false:.1f}% of the other voxels significant in some layer")
ok = hit >= 0.8 and false <= 0.05 and len(scores) >= 2
print("OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
