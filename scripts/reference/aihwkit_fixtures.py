"""Makes test/fixtures/aihwkit/reference.json: reference numbers from IBM aihwkit for the
`pcm-aihwkit` mode (see test/fixtures/aihwkit/README.md for what each case is).

Run where aihwkit (1.0.0, CPU build is enough) and torch are installed:
    python3 scripts/reference/aihwkit_fixtures.py [OUT]
This script only *uses* an installed aihwkit; it neither builds nor vendors it.
"""
import dataclasses
import enum
import json
import math
import os
import sys

import numpy as np
import torch

import aihwkit
from aihwkit.inference.compensation.drift import GlobalDriftCompensation
from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
from aihwkit.nn import AnalogLinear
from aihwkit.simulator.configs import InferenceRPUConfig
from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "aihwkit", "reference.json")

torch.set_num_threads(1)

# ---------------------------------------------------------------- helpers


def jsonable(obj):
    """Dataclass / enum / tensor -> plain JSON values."""
    if dataclasses.is_dataclass(obj):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.detach().cpu().numpy())
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()] if obj.ndim else jsonable(obj.item())
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float):
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if isinstance(obj, type):
        return obj.__name__
    return str(obj)


def f32(a):
    """float32 array -> nested lists holding each float32 value's shortest decimal that reads
    back to the same float32 (read it with Math.fround)."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return float(np.format_float_positional(a, unique=True, trim="-"))
    return [f32(v) for v in a]


def f64(a, digits=10):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return float(f"{a.item():.{digits}g}")
    return [f64(v, digits) for v in a]


def dyadic(rng, shape, sigma, denom):
    """Gaussian values rounded to multiples of 1/denom: exact in float32 and float64."""
    return (np.round(rng.standard_normal(shape) * sigma * denom) / denom).astype(np.float32)


IO_FIELDS = [
    "is_perfect", "mv_type", "inp_bound", "inp_res", "inp_noise", "inp_sto_round", "inp_asymmetry",
    "out_bound", "out_res", "out_noise", "out_noise_std", "out_sto_round", "out_scale",
    "out_asymmetry", "bound_management", "noise_management", "nm_thres", "max_bm_factor",
    "max_bm_res", "bm_test_negative_bound", "w_noise", "w_noise_type", "ir_drop",
    "out_nonlinearity", "v_offset_std", "r_series", "w_read_asymmetry_dtod",
]


def io_summary(fwd):
    d = {k: jsonable(getattr(fwd, k)) for k in IO_FIELDS}
    if not fwd.is_perfect:
        # what the simulator (RPUCuda IOMetaParameter::initializeForForward) does with them:
        # res > 1 means res steps, res <= 0 means no quantisation; the step is res * 2 * bound
        def step(res, bound):
            if res <= 0:
                return 0.0
            res = 1.0 / res if res > 1.0 else res
            return res * 2.0 * bound
        d["derived_inp_step"] = step(fwd.inp_res, fwd.inp_bound)
        d["derived_out_step"] = step(fwd.out_res, fwd.out_bound)
    return d


def config_record(cfg):
    return {
        "class": type(cfg).__name__,
        "forward": io_summary(cfg.forward),
        "mapping": jsonable(cfg.mapping),
        "noise_model": str(cfg.noise_model),
        "drift_compensation": str(cfg.drift_compensation),
        "clip": jsonable(cfg.clip),
        "remap": jsonable(cfg.remap),
        "modifier_type": jsonable(cfg.modifier.type),
        "pre_post_input_range_enable": bool(cfg.pre_post.input_range.enable),
        "repr": str(cfg),
    }


def make_layer(cfg, W):
    out_f, in_f = W.shape
    layer = AnalogLinear(in_f, out_f, bias=False, rpu_config=cfg)
    layer.set_weights(torch.from_numpy(W))
    layer.eval()
    return layer


def tiles_of(layer):
    mod = layer.analog_module
    if hasattr(mod, "array"):
        return mod, [t for row in mod.array for t in row]
    return mod, [mod]


# ---------------------------------------------------------------- part a: deterministic

rng = np.random.default_rng(20240611)
OUT_F, IN_F, BATCH = 40, 700, 12
# weights: dyadic N(0, 0.25) plus a per-row offset in [-0.2, 0.2], so that for the
# all-positive input rows some outputs saturate the ADC while others stay in range
W = dyadic(rng, (OUT_F, IN_F), 0.25, 256)
W += (np.round(np.linspace(-0.2, 0.2, OUT_F) * 256) / 256).astype(np.float32)[:, None]
W = W.astype(np.float32)
# two large weights so that max|W| differs between the two input halves (tiles)
W[3, 10] = 1.5
W[17, 600] = -2.0
# inputs are generic float32 values (not dyadic) so that no x/max|x| lands on a rounding tie
# of the DAC grid (ties would make float32 and float64 implementations disagree)
X = np.empty((BATCH, IN_F), dtype=np.float32)
X[:4] = rng.standard_normal((4, IN_F))                   # zero-mean
X[4:8] = rng.uniform(0, 1, (4, IN_F))                    # all positive
X[8:10] = 0.3 * rng.standard_normal((2, IN_F))           # small
X[10] = 0.0
X[10, [5, 400]] = [0.5, -0.25]                           # sparse: one non-zero per tile
X[11] = rng.standard_normal(IN_F)
X[11, 123] = 8.0                                         # one outlier
X = X.astype(np.float32)

ideal = X.astype(np.float64) @ W.astype(np.float64).T


def det_config(kind):
    cfg = InferenceRPUConfig()
    cfg.mapping.max_input_size = 512
    cfg.mapping.max_output_size = 512
    cfg.noise_model = PCMLikeNoiseModel(g_max=25.0)  # never applied: weights are not programmed
    cfg.drift_compensation = None
    f = cfg.forward
    f.inp_noise = 0.0
    f.out_noise = 0.0
    f.w_noise = 0.0
    if kind == "perfect":
        f.is_perfect = True
    elif kind in ("q8", "q8_mapped"):
        f.inp_res = 1 / (2**8 - 2)
        f.inp_bound = 1.0
        f.noise_management = NoiseManagementType.ABS_MAX
        f.out_res = 1 / (2**8 - 2)
        f.out_bound = 12.0
        f.bound_management = BoundManagementType.NONE
        if kind == "q8_mapped":
            cfg.mapping.weight_scaling_omega = 1.0
            cfg.mapping.weight_scaling_columnwise = False
    elif kind == "default_io_mapped_bm":
        # aihwkit's own forward defaults (7-bit DAC, 9-bit ADC over +-12, ABS_MAX noise
        # management, ITERATIVE bound management) with out_noise off, omega = 1
        cfg.mapping.weight_scaling_omega = 1.0
    else:
        raise ValueError(kind)
    return cfg


DET_NOTES = {
    "perfect": "forward.is_perfect=True: plain float32 X.W^T per tile, partial sums added",
    "q8": "8-bit DAC (inp_res=1/254, bound 1) after per-tile ABS_MAX noise management, 8-bit ADC "
          "(out_res=1/254 over +-12), no bound management, weights NOT rescaled "
          "(mapping.weight_scaling_omega=0, the InferenceRPUConfig default)",
    "q8_mapped": "as q8 but mapping.weight_scaling_omega=1.0 (per tile, not column-wise): each tile "
                 "stores W_tile/max|W_tile| and multiplies its output digitally by max|W_tile|",
    "default_io_mapped_bm": "aihwkit default IOParameters (inp_res=1/126, out_res=1/510, out_bound 12, "
                            "ABS_MAX, ITERATIVE bound management) with out_noise=0, omega=1.0",
}

deterministic = {
    "description": "all noise off; W [out=40, in=700] split over 2 tiles of in=350 (max 512); "
                   "Y = layer(X) in eval mode, no bias",
    "W": f32(W),
    "X": f32(X),
    "W_note": "W values are multiples of 1/256 (exact in float32 and float64); X values are generic float32",
    "ideal_float64": f64(ideal, 12),
    "cases": {},
}

with torch.no_grad():
    for kind in ["perfect", "q8", "q8_mapped", "default_io_mapped_bm"]:
        cfg = det_config(kind)
        layer = make_layer(cfg, W)
        Y = layer(torch.from_numpy(X)).numpy()
        mod, tiles = tiles_of(layer)
        in_sizes = list(getattr(mod, "in_sizes", [IN_F]))
        out_sizes = list(getattr(mod, "out_sizes", [OUT_F]))
        # per-tile partial outputs (already multiplied by the tile's digital mapping scale)
        partials, nm, scales, stored_absmax = [], [], [], []
        start = 0
        for t, size in zip(tiles, in_sizes):
            xs = torch.from_numpy(X[:, start:start + size].copy())
            partials.append(t(xs).numpy())
            nm.append(np.abs(X[:, start:start + size]).max(axis=1))
            s = t.get_scales()
            scales.append(None if s is None else float(s.view(-1)[0]))
            w_tile, _ = t.get_weights(apply_weight_scaling=False)
            stored_absmax.append(float(w_tile.abs().max()))
            start += size
        rec = {
            "note": DET_NOTES[kind],
            "config": config_record(cfg),
            "tiles": {"in_sizes": in_sizes, "out_sizes": out_sizes,
                      "tile_class": type(tiles[0]).__name__,
                      "mapping_scales": scales,
                      "stored_weight_absmax": stored_absmax},
            "Y": f32(Y),
            "partials": [f32(p) for p in partials],
            "nm_scale_per_tile": None if cfg.forward.is_perfect else f64(np.array(nm), 10),
            "max_abs_err_vs_ideal": float(np.abs(Y - ideal).max()),
        }
        if not cfg.forward.is_perfect:
            ob = cfg.forward.out_bound
            sat = []
            for k, (p, s) in enumerate(zip(partials, scales)):
                analog = np.abs(p / (s or 1.0)) / nm[k][:, None]
                sat.append(int((analog >= ob * (1 - 1e-6)).sum()))
            rec["first_pass_saturated_count_per_tile"] = sat
        deterministic["cases"][kind] = rec
        print(kind, "max|Y-ideal| =", rec["max_abs_err_vs_ideal"], rec.get("first_pass_saturated_count_per_tile"))

# ---------------------------------------------------------------- part b: PCM noise statistics

T_LIST = [0.0, 1.0, 3600.0, 86400.0]
N_INST = 500
G_MAX = 25.0

rng_b = np.random.default_rng(7)
Wn = np.round(np.linspace(-1.0, 1.0, 8 * 64) * 256) / 256
Wn = rng_b.permutation(Wn).reshape(8, 64).astype(np.float32)     # spans [-1, 1], max|W| = 1
Xn = dyadic(rng_b, (4, 64), 0.5, 128)
Xn[3] = np.abs(Xn[3])
Xn = Xn.astype(np.float32)


def noisy_config():
    cfg = InferenceRPUConfig()
    cfg.forward.is_perfect = True   # no DAC/ADC quantisation, no out_noise, no bounds
    cfg.mapping.weight_scaling_omega = 1.0
    cfg.noise_model = PCMLikeNoiseModel(g_max=G_MAX)
    cfg.drift_compensation = GlobalDriftCompensation()
    return cfg


cfg_n = noisy_config()
layer = make_layer(cfg_n, Wn)
_, (tile,) = tiles_of(layer)
ys = {t: [] for t in T_LIST}
alphas = {t: [] for t in T_LIST}
weffs = {t: [] for t in T_LIST}
wprog = []
with torch.no_grad():
    xt = torch.from_numpy(Xn)
    for inst in range(N_INST):
        torch.manual_seed(1000 + inst)
        layer.program_analog_weights()
        wprog.append(tile.programmed_weights.numpy().copy())
        for t in T_LIST:
            layer.drift_analog_weights(t)
            ys[t].append(layer(xt).numpy().copy())
            a = float(tile.alpha.view(-1)[0])
            alphas[t].append(a)
            w_now, _ = tile.get_weights(apply_weight_scaling=False)
            weffs[t].append(a * float(tile.get_scales().view(-1)[0]) * w_now.numpy())

per_t = []
for t in T_LIST:
    y = np.array(ys[t], dtype=np.float64)
    we = np.array(weffs[t], dtype=np.float64)
    al = np.array(alphas[t])
    per_t.append({
        "t_inference": t,
        "y_mean": f64(y.mean(0), 7), "y_std": f64(y.std(0, ddof=1), 7),
        "alpha_mean": float(al.mean()), "alpha_std": float(al.std(ddof=1)),
        "w_eff_mean": f64(we.mean(0), 6), "w_eff_std": f64(we.std(0, ddof=1), 6),
    })
wp = np.array(wprog, dtype=np.float64)

# per-device conductance statistics, straight from the noise model's functions
N_DEV = 20000
G_REL = [0.0, 0.05, 0.25, 0.5, 1.0]
nm_model = PCMLikeNoiseModel(g_max=G_MAX)
devices = []
with torch.no_grad():
    for i, gr in enumerate(G_REL):
        torch.manual_seed(50000 + i)
        g_t = torch.full((N_DEV,), gr * G_MAX, dtype=torch.float32)
        g_p = nm_model.apply_programming_noise_to_conductance(g_t)
        nu = nm_model.generate_drift_coefficients(g_t)
        rec = {"g_target_rel": gr, "g_target_uS": gr * G_MAX,
               "g_prog_mean": float(g_p.double().mean()), "g_prog_std": float(g_p.double().std()),
               "nu_mean": float(nu.double().mean()), "nu_std": float(nu.double().std()),
               "g_drift": []}
        for t in T_LIST:
            g_d = nm_model.apply_drift_noise_to_conductance(g_p, nu, t)
            rec["g_drift"].append({"t_inference": t, "mean": float(g_d.double().mean()),
                                   "std": float(g_d.double().std())})
        devices.append(rec)

noisy = {
    "description": "PCMLikeNoiseModel(g_max=25) + GlobalDriftCompensation, forward.is_perfect=True "
                   "(so only programming noise, drift and accumulated 1/f read noise act). One "
                   "tile; each instance: torch.manual_seed(1000+i); program_analog_weights(); then "
                   "for each t: drift_analog_weights(t) (fresh read noise from the same programmed "
                   "weights and drift exponents), Y = layer(X). std uses ddof=1.",
    "W": f32(Wn), "X": f32(Xn),
    "ideal_float64": f64(Xn.astype(np.float64) @ Wn.astype(np.float64).T, 10),
    "n_instances": N_INST,
    "t_inference": T_LIST,
    "config": config_record(cfg_n),
    "noise_model_params": {"g_max": nm_model.g_max, "prog_coeff": nm_model.prog_coeff,
                           "prog_coeff_g_max_reference": nm_model.prog_coeff_g_max_reference,
                           "t_0": nm_model.t_0, "t_read": nm_model.t_read,
                           "prog_noise_scale": nm_model.prog_noise_scale,
                           "read_noise_scale": nm_model.read_noise_scale,
                           "drift_scale": nm_model.drift_scale,
                           "g_converter": str(nm_model.g_converter)},
    "w_prog_mean": f64(wp.mean(0), 6), "w_prog_std": f64(wp.std(0, ddof=1), 6),
    "per_t": per_t,
    "devices": {"n_devices": N_DEV, "note": "g in uS; apply_programming_noise_to_conductance, "
                "generate_drift_coefficients(g_target), apply_drift_noise_to_conductance(g_prog, nu, t); "
                "std uses ddof=1", "stats": devices},
}

# ---------------------------------------------------------------- part c: drift compensation
# read through the default (non-perfect) forward: out_noise 0.06, 7-bit DAC, 9-bit ADC over
# +-12, ITERATIVE bound management, weight_scaling_omega 0 (the tile holds W as is). W is small,
# as a trained layer's weights are, so that the readout's output noise matters.

rng_c = np.random.default_rng(11)
Wd = dyadic(rng_c, (16, 128), 0.05, 1024)
Wd[0, 0] = 0.5                          # max|W|: where the conductance range maps
T_DRIFT = [0.0, 3600.0, 86400.0]
N_DRIFT = 500


def readout_config(perfect):
    cfg = InferenceRPUConfig()
    cfg.forward.is_perfect = perfect
    cfg.noise_model = PCMLikeNoiseModel(g_max=G_MAX)
    cfg.drift_compensation = GlobalDriftCompensation()
    return cfg


drift_readout = {
    "description": "GlobalDriftCompensation with the default forward (is_perfect=False) and, for the "
                   "same seeds, with is_perfect=True. One tile; each instance: "
                   "torch.manual_seed(3000+i); program_analog_weights(); for each t: "
                   "drift_analog_weights(t); alpha = tile.alpha; alpha_ideal = mean|programmed "
                   "weights| / mean|tile weights at t| (the noise-free ratio). std uses ddof=1.",
    "W": f32(Wd), "n_instances": N_DRIFT, "t_inference": T_DRIFT, "forward": {},
}
for perfect in (False, True):
    cfg_d = readout_config(perfect)
    layer_d = make_layer(cfg_d, Wd)
    _, (tile_d,) = tiles_of(layer_d)
    alphas = {t: [] for t in T_DRIFT}
    ideals = {t: [] for t in T_DRIFT}
    with torch.no_grad():
        for inst in range(N_DRIFT):
            torch.manual_seed(3000 + inst)
            layer_d.program_analog_weights()
            w_prog = tile_d.programmed_weights.double()
            for t in T_DRIFT:
                layer_d.drift_analog_weights(t)
                alphas[t].append(float(tile_d.alpha.view(-1)[0]))
                w_now, _ = tile_d.get_weights(apply_weight_scaling=False)
                ideals[t].append(float(w_prog.abs().mean() / w_now.double().abs().mean()))
    drift_readout["forward"]["perfect" if perfect else "default"] = {
        "config": config_record(cfg_d),
        "per_t": [{"t_inference": t,
                   "alpha_mean": float(np.mean(alphas[t])), "alpha_std": float(np.std(alphas[t], ddof=1)),
                   "alpha_ideal_mean": float(np.mean(ideals[t])),
                   "alpha_ideal_std": float(np.std(ideals[t], ddof=1))} for t in T_DRIFT],
    }

result = {
    "aihwkit_version": aihwkit.__version__,
    "torch_version": torch.__version__,
    "numpy_version": np.__version__,
    "generated_by": "python3 scripts/reference/aihwkit_fixtures.py",
    "seeds": {"deterministic_numpy": 20240611, "noisy_numpy": 7,
              "noisy_torch_per_instance": "1000 + i",
              "drift_readout_numpy": 11, "drift_readout_torch_per_instance": "3000 + i", "devices_torch_per_target": "50000 + k"},
    "deterministic": deterministic,
    "noisy": noisy,
    "drift_readout": drift_readout,
}
os.makedirs(os.path.dirname(os.path.abspath(OUT)), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(result, f, separators=(",", ":"))
    f.write("\n")
print("wrote", OUT, os.path.getsize(OUT), "bytes")
