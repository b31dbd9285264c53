"""PyTorch reference for bench/engine.ts: the same DeiT-S-sized encoder stack (pre-norm,
D=384, H=6, F=1536, T=197), fp32 with TF32 off, forward images/s on one GPU.
    python3 bench/torch_encoder.py --batch 16 --layers 12
"""
import argparse
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=16)
p.add_argument("--layers", type=int, default=12)
p.add_argument("--reps", type=int, default=20)
a = p.parse_args()

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"
layer = torch.nn.TransformerEncoderLayer(384, 6, 1536, dropout=0.0, activation="gelu",
                                         batch_first=True, norm_first=True, layer_norm_eps=1e-6)
# the fused fast path differs from the plain math we lower; keep the plain path for a like-for-like figure
model = torch.nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False).to(dev).eval()
x = torch.randn(a.batch, 197, 384, device=dev)
with torch.no_grad():
    for _ in range(3):
        model(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.reps):
        model(x)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / a.reps
print(f"torch fp32 (TF32 off) {torch.cuda.get_device_name()} batch {a.batch}: {dt*1e3:.1f} ms, {a.batch/dt:.1f} images/s")
