"""Iterative bound management, written independently of aihwkit from its documented behaviour
(forward.bound_management = ITERATIVE, C++ CPU tiles: per input vector), in NumPy float32 as
aihwkit's C++ computes it.

  python3 scripts/reference/bound_management.py [--write test/fixtures/analog/bm-numpy.json]

1. Checks itself against aihwkit 1.0.0's own output for its default IO with bound management
   (test/fixtures/aihwkit/reference.json, case default_io_mapped_bm): must agree to float
   precision.
2. Computes a small case built to reach every branch (a quiet vector, one saturating once, one
   saturating in every round up to the limit, one whose output lands on the top ADC code) with
   pcm-aihwkit's IO: W unscaled (weight_scaling_omega 0), 7-bit DAC after abs-max noise
   management, 9-bit ADC over +-12, max_bm_factor 1000, max_bm_res 0.25, no noise. With
   --write it stores W, X and Y as a fixture for test/analog/bound-management.test.ts.
"""
import argparse
import json
from pathlib import Path

import numpy as np

f32 = np.float32
ROOT = Path(__file__).resolve().parents[2]


def resolution(res, bound):
    """aihwkit's step: res = 1/steps (or steps), times the full range 2*bound, in float32."""
    r = f32(res if res <= 1 else 1 / res)
    return f32(r * f32(2 * bound))


def tile_forward(w, x, inp_res=1 / 126, out_res=1 / 510, out_bound=12.0, max_factor=1000,
                 max_res=0.25):
    """One tile, no noise: w [out, in], x [n, in] -> y [n, out] and the divisor per vector."""
    istep = resolution(inp_res, 1.0)
    ostep = resolution(out_res, out_bound)
    bound = f32(out_bound)
    y = np.zeros((x.shape[0], w.shape[0]), np.float32)
    divisors = []
    for n in range(x.shape[0]):
        nm = f32(np.abs(x[n]).max())
        if nm <= 0:
            divisors.append(1)
            continue
        red = 1.0
        while True:
            scale = f32(f32(1) / nm) / f32(red)
            v = (x[n] * scale).astype(np.float32)
            q = (np.rint(v / istep) * istep).astype(np.float32)
            q = np.clip(q, -1, 1)
            out = (w @ q).astype(np.float32)
            code = (np.rint(out / ostep) * ostep).astype(np.float32)
            saturated = bool(np.any(code > bound) or np.any(code < -bound))
            code = np.clip(code, -bound, bound)
            if not saturated or red > max_factor or red > max_res / istep:
                break
            red *= 2
        divisors.append(int(red))
        y[n] = code * f32(f32(red) * nm)
    return y, divisors


def check_against_aihwkit():
    ref = json.loads((ROOT / "test/fixtures/aihwkit/reference.json").read_text())
    det = ref["deterministic"]
    case = det["cases"]["default_io_mapped_bm"]
    w = np.array(det["W"], np.float32)
    x = np.array(det["X"], np.float32)
    total = np.zeros((x.shape[0], w.shape[0]), np.float64)
    start = 0
    for k, size in enumerate(case["tiles"]["in_sizes"]):
        wt = w[:, start:start + size]
        s = f32(np.abs(wt).max())  # weight_scaling_omega 1: the tile stores W/max|W|
        yt, div = tile_forward((wt / s).astype(np.float32), x[:, start:start + size])
        part = yt * s
        err = np.abs(part - np.array(case["partials"][k])).max()
        print(f"tile {k}: divisors {div}, max |partial - aihwkit| = {err:.2e}")
        total += part
        start += size
    err = np.abs(total - np.array(case["Y"])).max()
    print(f"max |Y - aihwkit| = {err:.2e} (max |Y| = {np.abs(case['Y']).max():.1f})")
    assert err < 1e-4


def small_case():
    """Four vectors on one tile of 8 rows: quiet; saturating until divisor 4; saturating in
    every round up to the limit (divisor 16, then clipped); landing on the top code."""
    rng = np.random.default_rng(3)
    n_in = 8
    w = np.zeros((6, n_in), np.float32)
    w[:3] = np.round(rng.normal(0, 0.3, (3, n_in)) * 64) / 64   # small weights
    w[3] = 1.75                                                # all inputs, moderately
    w[4, 0] = 12                                               # 12 x input 0
    w[5, 4:] = 60                                              # 60 x inputs 4..7
    x = np.array([
        [0, 0.3, -0.5, 0.2, 0, 0, 0, 0],
        [0.1, 0.9, 0.8, 1.0, 0.7, 0, 0, 0],       # column 5: 60 * 0.7 = 42 -> 21 -> 10.5
        [0, 0, 0, 0, 1, 1, 1, 1],                 # column 5: 240 -> ... -> 15 at divisor 16
        [0.25, 0, 0, 0, 0, 0, 0, 0],              # column 4: exactly 12, the top code
    ], np.float32)
    y, div = tile_forward(w, x)
    return w, x, y, div


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write")
    a = ap.parse_args()
    check_against_aihwkit()
    w, x, y, div = small_case()
    print("small case divisors per vector:", div)
    if a.write:
        Path(a.write).write_text(json.dumps({
            "note": "scripts/reference/bound_management.py: pcm-aihwkit IO (W unscaled, 7-bit DAC "
                    "after abs-max, 9-bit ADC over +-12, iterative bound management with "
                    "max_bm_factor 1000, max_bm_res 0.25), no noise, one tile",
            "W": w.tolist(), "X": x.tolist(), "Y": y.tolist(), "divisors": div,
        }) + "\n")


if __name__ == "__main__":
    main()
