"""PyTorch reference for the benchmarks, fp32 with TF32 off, forward images/s on one GPU:
- bench/engine.ts: the DeiT-S-sized encoder stack (pre-norm, D=384, H=6, F=1536, T=197);
- bench/gpu.ts (--model deit-s): the whole DeiT-S classifier as xbar builds it (16×16 patch
  embedding, class and distillation tokens, 198 tokens, 12 layers, final norm, two 1000-class
  heads averaged), from pixels on the GPU to logits; --json prints one line of JSON.
    python3 bench/torch_encoder.py --batch 16 --layers 12
    python3 bench/torch_encoder.py --model deit-s --batch 64 --json
"""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=16)
p.add_argument("--layers", type=int, default=12)
p.add_argument("--reps", type=int, default=20)
p.add_argument("--model", choices=["encoder", "deit-s"], default="encoder")
p.add_argument("--json", action="store_true")
a = p.parse_args()

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"


def encoder(d, heads, ffn, eps):
    layer = torch.nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=True, layer_norm_eps=eps)
    # the fused fast path differs from the plain math we lower; keep the plain path for a like-for-like figure
    return torch.nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False)


class DeiT(torch.nn.Module):
    """DeiT with a distillation token (HF DeiTForImageClassificationWithTeacher's layout)."""

    def __init__(self, d=384, heads=6, ffn=1536, image=224, patch=16, labels=1000, eps=1e-12):
        super().__init__()
        n = (image // patch) ** 2
        self.patches = torch.nn.Conv2d(3, d, patch, patch)
        self.tokens = torch.nn.Parameter(torch.randn(1, 2, d) * 0.02)
        self.position = torch.nn.Parameter(torch.randn(1, n + 2, d) * 0.02)
        self.encoder = encoder(d, heads, ffn, eps)
        self.norm = torch.nn.LayerNorm(d, eps=eps)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(d, labels) for _ in range(2)])

    def forward(self, x):
        p = self.patches(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.tokens.expand(x.shape[0], -1, -1), p], 1) + self.position
        h = self.norm(self.encoder(h))
        return (self.heads[0](h[:, 0]) + self.heads[1](h[:, 1])) / 2


if a.model == "deit-s":
    model = DeiT().to(dev).eval()
    x = torch.randn(a.batch, 3, 224, 224, device=dev)
else:
    model = encoder(384, 6, 1536, 1e-6).to(dev).eval()
    x = torch.randn(a.batch, 197, 384, device=dev)
with torch.no_grad():
    for _ in range(3):
        model(x)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(a.reps):
        model(x)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / a.reps
name = torch.cuda.get_device_name()
if a.json:
    print(json.dumps({"device": name, "model": a.model, "batch": a.batch, "seconds": dt,
                      "imagesPerSecond": a.batch / dt,
                      "peakBytes": torch.cuda.max_memory_allocated(), "torch": torch.__version__}))
else:
    print(f"torch fp32 (TF32 off) {name} {a.model} batch {a.batch}: {dt*1e3:.1f} ms, {a.batch/dt:.1f} images/s")
