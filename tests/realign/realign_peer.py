# dipy's rigid registration of volume pairs, for tests/realign and
# bench/rtfmri: Debian's python3 with numpy, nibabel, dipy.
# usage: realign_peer.py REF.nii MOVED.nii... (NIfTI, same grid)
# Prints per moved volume one line "tx ty tz rx ry rz seconds": dipy's
# estimate (mutual information, 3 levels, translation then rigid) in myelin's convention
# (plugins/realign/realign_kernels.h): T(p) = R (p - c) + c + t with c the
# grid center in world mm and R = Rx(rx) Ry(ry) Rz(rz), degrees; dipy's
# optimized affine maps a reference (static) point to the moving one, as T.
import sys, time
import numpy as np
import nibabel as nb
from dipy.align.imaffine import AffineRegistration, MutualInformationMetric
from dipy.align.transforms import RigidTransform3D, TranslationTransform3D

ref = nb.load(sys.argv[1])
static, A = np.asarray(ref.get_fdata(dtype=np.float32)), ref.affine
c = A @ np.append((np.array(static.shape[:3]) - 1) / 2.0, 1.0)
reg = AffineRegistration(metric=MutualInformationMetric(32, None), level_iters=[200, 100, 50],
                         sigmas=[2.0, 1.0, 0.0], factors=[4, 2, 1], verbosity=0)
for path in sys.argv[2:]:
    img = nb.load(path)
    moving = np.asarray(img.get_fdata(dtype=np.float32))
    t0 = time.perf_counter()
    # dipy's recipe: translation first, then rigid from there (rigid alone
    # from the identity stalls on these pairs)
    tmap = reg.optimize(static, moving, TranslationTransform3D(), None, A, img.affine)
    amap = reg.optimize(static, moving, RigidTransform3D(), None, A, img.affine, starting_affine=tmap.affine)
    dt = time.perf_counter() - t0
    T = amap.affine
    t = (T @ c)[:3] - c[:3]
    R = T[:3, :3]
    ry = np.degrees(np.arcsin(np.clip(R[0, 2], -1, 1)))
    rx = np.degrees(np.arctan2(-R[1, 2], R[2, 2]))
    rz = np.degrees(np.arctan2(-R[0, 1], R[0, 0]))
    print('%.6f %.6f %.6f %.6f %.6f %.6f %.4f' % (t[0], t[1], t[2], rx, ry, rz, dt))
    sys.stdout.flush()
