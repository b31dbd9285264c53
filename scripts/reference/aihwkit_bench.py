"""CPU forward time of a DeiT-S-sized encoder stack on IBM aihwkit's analog tiles, against the
same stack in plain PyTorch fp32 (the reference for bench/aihwkit-baseline.txt).

Stack: DeiT-S with distillation token -- digital patch embedding (Conv2d 16x16) + cls/dist tokens
+ position embedding (198 tokens), 12 pre-norm encoder layers (D=384, 6 heads, MLP 1536, GELU,
LayerNorm eps 1e-6), final LayerNorm, digital classifier heads (head + head_dist, 1000 classes).
Each layer has separate nn.Linear q, k, v, proj, fc1, fc2 so `convert_to_analog` turns each into
an AnalogLinear (fc2 has 1536 inputs > mapping.max_input_size=512, so it becomes a 3-tile array;
fc1 has 1536 outputs > max_output_size=512, so it becomes a 3-tile array too).

RPU config: InferenceRPUConfig() defaults (out_noise 0.06, 7-bit input, 9-bit output, iterative
bound management, ...) plus noise_model=PCMLikeNoiseModel(g_max=25.0),
drift_compensation=GlobalDriftCompensation(), mapping.max_input_size = max_output_size = 512.
Backends:
    torch          plain PyTorch fp32 (no aihwkit)
    aihwkit-cpp    InferenceRPUConfig        -> InferenceTile (the C++ RPUCuda CPU simulator)
    aihwkit-torch  TorchInferenceRPUConfig   -> TorchInferenceTile (aihwkit's pure-torch tile)

Each backend runs in its own child process (so its peak RSS is its own): build, convert, eval(),
program_analog_weights() and drift_analog_weights(3600) once (each timed), then 1 warm-up and
3 timed `model(x)` calls under torch.no_grad() with torch.set_num_threads(2). After the timed
calls one extra (untimed-for-the-headline) forward is run with hooks that measure the wall time
spent inside the analog linear layers, to show what dominates.

Run where aihwkit (1.0.0, a CPU build is enough) and torch are installed:
    python3 scripts/reference/aihwkit_bench.py --batch 32 --out bench/aihwkit-baseline.txt
This script only *uses* an installed aihwkit; it neither builds nor vendors it.
"""
import argparse
import datetime
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

D, HEADS, MLP, LAYERS, IMG, PATCH, CLASSES = 384, 6, 1536, 12, 224, 16, 1000
TOKENS = (IMG // PATCH) ** 2 + 2  # 196 patches + cls + distillation token = 198
BACKENDS = ("torch", "aihwkit-cpp", "aihwkit-torch")


# ---------------------------------------------------------------- model (plain torch)


class Block(nn.Module):
    """Pre-norm encoder layer with separate q/k/v Linear layers."""

    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=1e-6)
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, D)
        self.v = nn.Linear(D, D)
        self.proj = nn.Linear(D, D)
        self.norm2 = nn.LayerNorm(D, eps=1e-6)
        self.fc1 = nn.Linear(D, MLP)
        self.fc2 = nn.Linear(MLP, D)

    def forward(self, x):
        b, t, _ = x.shape
        h = self.norm1(x)
        hd = D // HEADS

        def heads(y):
            return y.reshape(b, t, HEADS, hd).transpose(1, 2)  # b, H, t, hd

        q, k, v = heads(self.q(h)), heads(self.k(h)), heads(self.v(h))
        att = torch.softmax((q @ k.transpose(-2, -1)) * (hd ** -0.5), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.proj(o)
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x


class DeiTSmallDistilled(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, D, kernel_size=PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.dist_token = nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, TOKENS, D) * 0.02)
        self.blocks = nn.Sequential(*[Block() for _ in range(LAYERS)])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Linear(D, CLASSES)
        self.head_dist = nn.Linear(D, CLASSES)

    def forward(self, img):
        b = img.shape[0]
        x = self.patch_embed(img).flatten(2).transpose(1, 2)  # b, 196, D
        x = torch.cat([self.cls_token.expand(b, -1, -1), self.dist_token.expand(b, -1, -1), x], 1)
        x = self.blocks(x + self.pos_embed)
        x = self.norm(x)
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


DIGITAL = ["patch_embed", "head", "head_dist"]  # kept digital (excluded from conversion)


# ---------------------------------------------------------------- child: one backend


def machine_busy_s():
    """Busy CPU seconds of the whole machine so far (all cores, /proc/stat), or None."""
    try:
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except Exception:
        return None


def rss_mib():
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(backend, batch, reps, warmup, threads, seed):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = DeiTSmallDistilled().eval()
    x = torch.randn(batch, 3, IMG, IMG)
    say = lambda s: print(s, flush=True)  # noqa: E731

    analog_layers = []
    if backend != "torch":
        from aihwkit.inference.compensation.drift import GlobalDriftCompensation
        from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
        from aihwkit.nn import AnalogLinear
        from aihwkit.nn.conversion import convert_to_analog
        from aihwkit.simulator import configs

        if backend == "aihwkit-cpp":
            cfg = configs.InferenceRPUConfig()
        else:
            if not hasattr(configs, "TorchInferenceRPUConfig"):
                say(f"{backend}: TorchInferenceRPUConfig does not exist in this aihwkit")
                return 0
            cfg = configs.TorchInferenceRPUConfig()
        cfg.noise_model = PCMLikeNoiseModel(g_max=25.0)
        cfg.drift_compensation = GlobalDriftCompensation()
        cfg.mapping.max_input_size = 512
        cfg.mapping.max_output_size = 512

        t = time.perf_counter()
        model = convert_to_analog(model, cfg, exclude_modules=DIGITAL)
        model.eval()
        say(f"{backend} convert_to_analog: {time.perf_counter() - t:.2f} s")
        analog_layers = [m for m in model.modules() if isinstance(m, AnalogLinear)]
        tiles = list(model.analog_tiles())
        say(f"{backend} analog layers: {len(analog_layers)}, analog tiles: {len(tiles)}, "
            f"tile class: {type(tiles[0]).__name__}, "
            f"digital modules: {[n for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d)]}")
        f = tiles[0].rpu_config.forward
        say(f"{backend} forward io: out_noise={f.out_noise} inp_res={f.inp_res} out_res={f.out_res} "
            f"bound_management={f.bound_management.name} noise_management={f.noise_management.name} "
            f"w_noise={f.w_noise} ir_drop={f.ir_drop}")

        with torch.no_grad():
            for label, fn in (("program_analog_weights", model.program_analog_weights),
                              ("drift_analog_weights(3600)", lambda: model.drift_analog_weights(3600))):
                b0, c0, t = machine_busy_s(), time.process_time(), time.perf_counter()
                fn()
                dt, b1, c1 = time.perf_counter() - t, machine_busy_s(), time.process_time()
                other = f", others {max(0.0, (b1 - b0) - (c1 - c0)):.2f} core-s" if b0 is not None else ""
                say(f"{backend} {label}: {dt:.2f} s (this process {c1 - c0:.2f} CPU-s{other})")

    times = []
    with torch.no_grad():
        for i in range(warmup + reps):
            b0, c0 = machine_busy_s(), time.process_time()
            t = time.perf_counter()
            y = model(x)
            dt = time.perf_counter() - t
            b1, c1 = machine_busy_s(), time.process_time()
            if i >= warmup:
                times.append(dt)
            # "others": CPU seconds the rest of the machine used meanwhile (contention check)
            other = f", others {max(0.0, (b1 - b0) - (c1 - c0)):.2f} core-s" if b0 is not None else ""
            say(f"  {backend} {'warm-up' if i < warmup else 'rep'} {i - warmup + 1 if i >= warmup else i + 1}: "
                f"{dt:.2f} s (this process {c1 - c0:.2f} CPU-s{other})")
    assert y.shape == (batch, CLASSES) and torch.isfinite(y).all()
    mean = sum(times) / len(times)
    say(f"{backend} forward batch {batch}: {mean:.2f} s  (min {min(times):.2f}, max {max(times):.2f}; "
        f"{batch / mean:.2f} images/s; mean of {reps} after {warmup} warm-up)")

    # One more forward with hooks on every (analog) linear layer to see where the time goes.
    lin = analog_layers if analog_layers else [m for n, m in model.named_modules()
                                               if isinstance(m, nn.Linear) and n.startswith("blocks")]
    acc = {"t": 0.0}
    starts = {}

    def pre(mod, _inp):
        starts[id(mod)] = time.perf_counter()

    def post(mod, _inp, _out):
        acc["t"] += time.perf_counter() - starts[id(mod)]

    hs = [m.register_forward_pre_hook(pre) for m in lin] + [m.register_forward_hook(post) for m in lin]
    with torch.no_grad():
        t = time.perf_counter()
        model(x)
        tot = time.perf_counter() - t
    for h in hs:
        h.remove()
    say(f"{backend} time inside the {len(lin)} encoder linear layers: {acc['t']:.2f} s of {tot:.2f} s "
        f"({100 * acc['t'] / tot:.0f}%)")
    say(f"{backend} peak RSS: {rss_mib():.0f} MiB")
    return 0


# ---------------------------------------------------------------- parent: header + children


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.rstrip()
    except Exception as e:  # pragma: no cover
        return f"({e})"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, nargs="+", default=[32])
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write everything printed to this file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.child:
        return run_child(a.child, a.batch[0], a.reps, a.warmup, a.threads, a.seed)

    lines = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    try:
        import aihwkit
        aihwkit_version = aihwkit.__version__
    except Exception as e:
        aihwkit_version = f"not importable ({e})"
    say("# aihwkit CPU forward benchmark: DeiT-S-sized encoder stack (scripts/reference/aihwkit_bench.py)")
    say(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    say(f"command: {' '.join(shlex.quote(s) for s in [sys.executable] + sys.argv)}")
    say(f"python {platform.python_version()}, torch {torch.__version__}, aihwkit {aihwkit_version}, "
        f"torch.set_num_threads({a.threads}), os.cpu_count()={os.cpu_count()}")
    say(f"stack: {LAYERS} pre-norm layers, D={D}, heads={HEADS}, MLP={MLP}, GELU, tokens={TOKENS}, fp32; "
        f"patch embed + heads digital; x = randn(batch, 3, {IMG}, {IMG})")
    say("rpu config: InferenceRPUConfig() defaults + PCMLikeNoiseModel(g_max=25.0), "
        "GlobalDriftCompensation(), mapping.max_input_size=max_output_size=512")
    say("lscpu | head:")
    for ln in sh("lscpu | head").splitlines():
        say("    " + ln)
    say("")

    rc = 0
    for batch in a.batch:
        for backend in a.backends.split(","):
            cmd = [sys.executable, os.path.abspath(__file__), "--child", backend, "--batch", str(batch),
                   "--reps", str(a.reps), "--warmup", str(a.warmup), "--threads", str(a.threads),
                   "--seed", str(a.seed)]
            t = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for ln in proc.stdout:
                say(ln.rstrip("\n"))
            proc.wait()
            if proc.returncode:
                say(f"{backend} batch {batch}: FAILED (exit {proc.returncode})")
                rc = 1
            say(f"({backend} batch {batch}: child process wall time {time.perf_counter() - t:.1f} s)")
            say("")

    if a.out:
        with open(a.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
