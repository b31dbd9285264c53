"""Trains xbar's DeiT-S-shaped testbed: a ViT with DeiT-S's encoder (hidden 384, 12 pre-norm
layers, 6 heads, MLP 1536, GELU, qkv bias) on Fashion-MNIST with 2×2 patches (196 patches + the
class token = 197 tokens, DeiT-S's sequence length), and saves it as a Hugging Face
ViTForImageClassification folder that xbar and transformers load (config.json,
preprocessor_config.json, model.safetensors in fp16 by default, train_log.json).

Needs PyTorch and numpy only (no transformers, safetensors or torchvision): the model is an
nn.Module of its own whose state dict has HF's names and layouts, and vit_checkpoint.py beside
this file writes the folder. On one NVIDIA H100, from the repository root:

    python3 scripts/reference/train_vit_fmnist.py --data DATA_DIR --out OUT_DIR --minutes 8 --split-mb 15

DATA_DIR holds the four Fashion-MNIST IDX .gz files. --minutes bounds the whole run (from the
interpreter's start to the last file written): after a short probe of the step time the number
of epochs is chosen so that training, the final evaluations and the files fit (at most
--epochs), and the learning-rate schedule is laid out over that number. --split-mb writes the
weights as model.safetensors.part0, .part1, ... (byte slices; `cat` them in order) with
model.safetensors.sha256. `--smoke` runs a tiny model on a few hundred images on the CPU, to
check the script end to end. `--teacher-epochs N` first trains a small CNN for N epochs and then
distils it into the ViT through the class token (DeiT's hard distillation; the architecture stays
HF's ViTForImageClassification).
"""
import time

START = time.time()  # the --minutes budget counts from here, before torch's import

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import vit_checkpoint as ckpt  # noqa: E402

# Time kept back after training for the final fp32 evaluations (measured) and the files.
FILES_SECONDS = 20
# Share of the time left after the probe that the planned epochs may fill (clock drift, jitter).
PLAN_SHARE = 0.93


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder of the four Fashion-MNIST IDX .gz files")
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of the whole run")
    ap.add_argument("--epochs", type=int, default=100, help="most epochs; fewer when the budget says so")
    ap.add_argument(
        "--checkpoint",
        default=None,
        help="training state file: the schedule is laid out over --epochs exactly, the state is saved "
        "there when the budget ends the run first, and the same command run again resumes from it",
    )
    ap.add_argument("--stop-after", type=int, default=None, help="end this run after this many epochs, as the budget would")
    ap.add_argument("--batch", type=int, default=512)
    # DeiT's rule, lr = 5e-4 · batch/512 with AdamW and weight decay 0.05, is the rate DeiT-S (the
    # same 12 pre-norm layers of width 384) was trained with from scratch; the higher rates common
    # for shallow ViTs on small images (1e-3 and more) are less safe at 12 layers for a run that is
    # made once. The warm-up is a larger share than DeiT's 5 of 300 epochs: the schedule is short.
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default 5e-4 · batch/512)")
    ap.add_argument("--warmup", type=float, default=0.05, help="linear warm-up, as a share of all steps")
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    ap.add_argument("--drop-path", type=float, default=0.1, help="stochastic depth of the last layer (DeiT-S's)")
    ap.add_argument("--shift", type=int, default=2, help="random shifts of up to this many pixels")
    ap.add_argument("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--mlp", type=int, default=1536)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--eps", type=float, default=1e-6, help="LayerNorm epsilon (DeiT's timm models use 1e-6)")
    ap.add_argument("--dtype", choices=sorted(ckpt.STORAGE), default="f16", help="stored weights")
    ap.add_argument("--split-mb", type=float, default=None, help="write the weights in parts of at most this many MiB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-batch", type=int, default=1000)
    ap.add_argument("--device", default=None, help="cuda (default where there is one) or cpu")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the training forward (its compile time counts against --minutes)",
    )
    ap.add_argument(
        "--teacher-epochs",
        type=int,
        default=0,
        help="train a small CNN teacher for this many epochs first, then distil it into the ViT through its "
        "class token (DeiT's hard distillation: half the loss against the teacher's predicted class); 0: off",
    )
    ap.add_argument("--distill-weight", type=float, default=0.5, help="share of the loss against the teacher")
    ap.add_argument("--smoke", action="store_true", help="tiny model, 512/256 images, 1 epoch, CPU")
    a = ap.parse_args()
    a.train_limit = a.test_limit = None
    if a.smoke:
        a.hidden, a.layers, a.heads, a.mlp = 48, 2, 3, 96
        a.epochs = 2 if a.checkpoint else 1
        a.batch, a.eval_batch = 64, 128
        a.train_limit, a.test_limit = 512, 256
        a.device = a.device or "cpu"
    if a.lr is None:
        a.lr = 5e-4 * a.batch / 512
    if a.device is None:
        if not torch.cuda.is_available():
            ap.error("no CUDA device found: pass --device cpu to train on the CPU anyway")
        a.device = "cuda"
    if a.batch < 1 or a.epochs < 1 or a.minutes <= 0:
        ap.error(f"--batch {a.batch}, --epochs {a.epochs} and --minutes {a.minutes} must be positive")
    return a


# ---------------------------------------------------------------------------------------------
# The model: HF ViTForImageClassification's module tree (so its state dict has HF's names), with
# the patch embedding as a matmul and attention through scaled_dot_product_attention.


class SelfAttention(nn.Module):
    def __init__(self, d, bias):
        super().__init__()
        self.query = nn.Linear(d, d, bias=bias)
        self.key = nn.Linear(d, d, bias=bias)
        self.value = nn.Linear(d, d, bias=bias)


class Dense(nn.Module):
    """HF's ViTSelfOutput, ViTIntermediate and ViTOutput: one `dense` each."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)


class Attention(nn.Module):
    def __init__(self, d, bias):
        super().__init__()
        self.attention = SelfAttention(d, bias)
        self.output = Dense(d, d)


class Layer(nn.Module):
    """Pre-norm: x + attention(LN(x)), then x + MLP(LN(x)); each branch dropped per sample at
    rate `drop` in training (stochastic depth)."""

    def __init__(self, d, heads, mlp, eps, bias, drop):
        super().__init__()
        self.heads, self.drop = heads, drop
        self.attention = Attention(d, bias)
        self.intermediate = Dense(d, mlp)
        self.output = Dense(mlp, d)
        self.layernorm_before = nn.LayerNorm(d, eps=eps)
        self.layernorm_after = nn.LayerNorm(d, eps=eps)

    def branch(self, h):
        if not self.training or self.drop == 0:
            return h
        keep = torch.rand(h.shape[0], 1, 1, device=h.device) >= self.drop
        return h * (keep.to(h.dtype) / (1 - self.drop))

    def forward(self, x):
        b, t, d = x.shape
        a = self.attention.attention
        # one matmul for Q, K and V (the weights stay three HF tensors)
        w = torch.cat([a.query.weight, a.key.weight, a.value.weight])
        bias = torch.cat([a.query.bias, a.key.bias, a.value.bias]) if a.query.bias is not None else None
        qkv = F.linear(self.layernorm_before(x), w, bias)
        q, k, v = qkv.view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        x = x + self.branch(self.attention.output.dense(o))
        h = self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))
        return x + self.branch(h)


class Encoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class PatchEmbeddings(nn.Module):
    def __init__(self, channels, d, patch):
        super().__init__()
        self.projection = nn.Conv2d(channels, d, patch, stride=patch)


class Embeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config["hidden_size"]
        self.patch = config["patch_size"]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.position_embeddings = nn.Parameter(torch.zeros(1, ckpt.tokens(config), d))
        self.patch_embeddings = PatchEmbeddings(config["num_channels"], d, self.patch)

    def forward(self, pixels):
        # (B,C,H,W) → (B,N,C·P·P) in the conv kernel's [D,C,P,P] order: the stride-P conv as a matmul
        b, c, h, w = pixels.shape
        p = self.patch
        patches = pixels.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)
        proj = self.patch_embeddings.projection
        x = F.linear(patches, proj.weight.flatten(1), proj.bias)
        cls = self.cls_token.expand(b, -1, -1)
        return torch.cat([cls, x.to(cls.dtype)], 1) + self.position_embeddings


class Backbone(nn.Module):
    def __init__(self, config, drop_path):
        super().__init__()
        d, n = config["hidden_size"], config["num_hidden_layers"]
        eps = config["layer_norm_eps"]
        self.embeddings = Embeddings(config)
        # stochastic depth grows linearly with depth to `drop_path` at the last layer (DeiT's rule)
        rates = [drop_path * i / max(1, n - 1) for i in range(n)]
        heads, mlp, bias = config["num_attention_heads"], config["intermediate_size"], config["qkv_bias"]
        self.encoder = Encoder([Layer(d, heads, mlp, eps, bias, r) for r in rates])
        self.layernorm = nn.LayerNorm(d, eps=eps)


class VitClassifier(nn.Module):
    """ViTForImageClassification's computation: logits of the class token after the last LayerNorm."""

    def __init__(self, config, drop_path=0.0):
        super().__init__()
        self.vit = Backbone(config, drop_path)
        self.classifier = nn.Linear(config["hidden_size"], len(config["id2label"]))
        self.init_weights()

    def init_weights(self):
        # HF's ViT initialisation: truncated N(0, 0.02²) weights and tokens, zero biases, LayerNorm 1/0
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.vit.embeddings.cls_token, std=0.02)
        nn.init.trunc_normal_(self.vit.embeddings.position_embeddings, std=0.02)

    def forward(self, pixels):
        x = self.vit.embeddings(pixels)
        for layer in self.vit.encoder.layer:
            x = layer(x)
        # LayerNorm acts per token: normalising the class token alone gives HF's logits
        return self.classifier(self.vit.layernorm(x[:, 0]))


# ---------------------------------------------------------------------------------------------
# Data on the device, augmented in batch


def to_pixels(images):
    """uint8 (B,28,28) → float32 (B,1,28,28), normalised as preprocessor_config.json says."""
    pre = ckpt.PREPROCESSOR
    return (images.unsqueeze(1).float() * pre["rescale_factor"] - pre["image_mean"]) / pre["image_std"]


def augment(images, shift, flip):
    """Random shifts of up to `shift` pixels (zero padding, then a random crop) and horizontal flips."""
    b, h, w = images.shape
    dev = images.device
    if shift:
        padded = F.pad(images, (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (b, 1, 1), device=dev)
        dx = torch.randint(0, 2 * shift + 1, (b, 1, 1), device=dev)
        rows = dy + torch.arange(h, device=dev).view(1, h, 1)
        cols = dx + torch.arange(w, device=dev).view(1, 1, w)
        images = padded[torch.arange(b, device=dev).view(b, 1, 1), rows, cols]
    if flip:
        images = torch.where(torch.rand(b, 1, 1, device=dev) < 0.5, images.flip(-1), images)
    return images


def autocast(device, bf16):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@torch.no_grad()
def accuracy(model, images, labels, batch, bf16):
    """Top-1 accuracy on all `images`, in bf16 autocast or in fp32."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    for i in range(0, len(images), batch):
        with autocast(images.device, bf16):
            logits = model(to_pixels(images[i : i + batch]))
        correct += (logits.argmax(-1) == labels[i : i + batch]).sum()
    model.train()
    return correct.item() / len(images)


# ---------------------------------------------------------------------------------------------
# Training


class Teacher(nn.Module):
    """A small CNN (three stages of two 3×3 convolutions with batch norm, 0.29 M parameters),
    trained in a few epochs: DeiT's recipe distils a convolutional teacher into the transformer,
    whose own inductive bias is weak on a small data set. Its test accuracy is logged
    (train_log.json, `teacher`), so a card can say what the student was taught by."""

    def __init__(self, width=32, classes=10):
        super().__init__()

        def stage(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU(),
            )

        w = width
        self.features = nn.Sequential(
            stage(1, w), nn.MaxPool2d(2), stage(w, 2 * w), nn.MaxPool2d(2), stage(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, classes)

    def forward(self, pixels):
        return self.head(self.features(pixels))


def train_teacher(data, args, device):
    """The teacher, trained on the training split with the student's augmentation (AdamW, one-cycle
    cosine, label smoothing); returns it in eval mode and its test accuracy."""
    torch.manual_seed(args.seed + 1)
    teacher = Teacher().to(device)
    opt = torch.optim.AdamW(teacher.parameters(), lr=2e-3, weight_decay=5e-4)
    n = len(data["train_x"])
    steps = n // args.batch
    total = args.teacher_epochs * steps
    step = 0
    t0 = time.time()
    for epoch in range(args.teacher_epochs):
        order = torch.randperm(n, device=device)
        for s in range(steps):
            idx = order[s * args.batch : (s + 1) * args.batch]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, max(1, total // 20), 2e-3)
            pixels = to_pixels(augment(data["train_x"][idx], args.shift, args.flip))
            with autocast(device, True):
                logits = teacher(pixels)
            loss = F.cross_entropy(logits.float(), data["train_y"][idx], label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    teacher.eval()
    acc = accuracy(teacher, data["test_x"], data["test_y"], args.eval_batch, bf16=False)
    teacher.eval()  # accuracy() leaves a model in train mode
    for p in teacher.parameters():
        p.requires_grad_(False)
    print(f"teacher: {args.teacher_epochs} epochs in {time.time() - t0:.0f} s, test {100 * acc:.2f} %", flush=True)
    return teacher, acc, time.time() - t0


def make_optimizer(model, args, device):
    # no decay for biases, LayerNorm and the class/position tokens (DeiT's choice)
    decay, plain = [], []
    for name, p in model.named_parameters():
        skip = p.ndim < 2 or name.endswith(("cls_token", "position_embeddings"))
        (plain if skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), **fused)


def lr_at(step, total, warmup, peak):
    """Linear warm-up to `peak` over `warmup` steps, then cosine decay towards 0 at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_step(forward, model, opt, images, labels, lr, args, teacher=None):
    for g in opt.param_groups:
        g["lr"] = lr
    pixels = to_pixels(augment(images, args.shift, args.flip))
    with autocast(images.device, True):
        logits = forward(pixels)
        if teacher is not None:
            with torch.no_grad():
                taught = teacher(pixels).argmax(-1)
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=args.label_smoothing)
    if teacher is not None:
        # DeiT's hard distillation, through the class token (the model keeps HF's architecture)
        w = args.distill_weight
        loss = (1 - w) * loss + w * F.cross_entropy(logits.float(), taught)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    opt.step()
    return loss.detach()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def probe(forward, model, data, args, device, teacher=None):
    """Seconds per training step, per bf16 test pass and per fp32 test pass, measured on the
    model with a throwaway optimizer; the weights are restored afterwards."""
    saved = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer(model, args, device)
    n = len(data["train_x"])
    warm, timed = (1, 2) if args.smoke else (5, 20)
    for i in range(warm + timed):
        if i == warm:
            sync(device)
            t = time.time()
        idx = torch.randint(0, n, (args.batch,), device=device)
        train_step(forward, model, opt, data["train_x"][idx], data["train_y"][idx], 0.0, args, teacher)
    sync(device)
    step_s = (time.time() - t) / timed
    del opt
    with torch.no_grad():
        for p, s in zip(model.parameters(), saved):
            p.copy_(s)
            p.grad = None
    t = time.time()
    accuracy(model, data["test_x"], data["test_y"], args.eval_batch, bf16=True)
    eval_s = time.time() - t
    part = min(len(data["test_x"]), args.eval_batch)
    t = time.time()
    accuracy(model, data["test_x"][:part], data["test_y"][:part], args.eval_batch, bf16=False)
    fp32_eval_s = (time.time() - t) * len(data["test_x"]) / part
    return step_s, eval_s, fp32_eval_s


def load_data(args, device):
    raw = ckpt.load_fashion_mnist(args.data)

    def put(key, limit, dtype):
        arr = raw[key][:limit] if limit else raw[key]
        return torch.from_numpy(np.array(arr)).to(device=device, dtype=dtype)

    return {
        "train_x": put("train_images", args.train_limit, torch.uint8),
        "train_y": put("train_labels", args.train_limit, torch.long),
        "test_x": put("test_images", args.test_limit, torch.uint8),
        "test_y": put("test_labels", args.test_limit, torch.long),
    }


def check_with_transformers(config, stored_bytes, pixels, logits):
    """Loads the stored folder with transformers' ViTForImageClassification.from_pretrained (as a
    user would: it maps the checkpoint's names onto the installed version's modules) and compares
    its logits with ours, where transformers is importable."""
    # scripts/reference/tokenizers.py would shadow the `tokenizers` package transformers imports
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    try:
        import transformers
    except ImportError:
        return {"skipped": "transformers is not importable"}
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "config.json"), "w") as f:
                json.dump(config, f)
            with open(os.path.join(folder, "model.safetensors"), "wb") as f:
                f.write(stored_bytes)
            hf = transformers.ViTForImageClassification.from_pretrained(folder).eval()
        with torch.no_grad():
            ref = hf(pixel_values=pixels.cpu()).logits
        diff = (ref - logits.cpu()).abs().max().item()
        return {"transformers": transformers.__version__, "images": len(pixels), "max_abs_logit_diff": diff}
    except Exception as e:  # the model is saved already: report, do not fail
        return {"error": f"{type(e).__name__}: {str(e)[:300]}"}


def recipe_of(args):
    """The settings a resumed run must share with the run that saved its state."""
    keys = ("epochs", "batch", "lr", "warmup", "weight_decay", "label_smoothing", "clip", "drop_path", "shift",
            "flip", "hidden", "layers", "heads", "mlp", "patch", "eps", "seed", "train_limit", "teacher_epochs",
            "distill_weight")
    return {k: getattr(args, k) for k in keys}


def set_fp32_matmuls():
    # fp32 evaluations in IEEE fp32, not TF32 (training runs in bf16 autocast either way); the
    # default already, said here because the card reports fp32 figures
    torch.set_float32_matmul_precision("highest")


def main():
    args = parse_args()
    deadline = START + args.minutes * 60
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    set_fp32_matmuls()
    out = args.out
    os.makedirs(out, exist_ok=True)

    config = ckpt.vit_config(args.hidden, args.layers, args.heads, args.mlp, args.patch, args.eps)
    model = VitClassifier(config, args.drop_path).to(device)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if shapes != ckpt.hf_vit_shapes(config):
        raise SystemExit(f"state dict differs from HF's: {sorted(set(shapes.items()) ^ set(ckpt.hf_vit_shapes(config).items()))[:6]}")
    params = sum(p.numel() for p in model.parameters())
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    data = load_data(args, device)
    n_train, n_test = len(data["train_x"]), len(data["test_x"])
    if args.batch > n_train:
        raise SystemExit(f"--batch {args.batch}: more than the {n_train} training images")
    print(
        f"ViT {args.layers}×{args.hidden} ({args.heads} heads, MLP {args.mlp}), {ckpt.tokens(config)} tokens, "
        f"{params:,} parameters; {n_train:,}/{n_test:,} images; {gpu}, torch {torch.__version__}",
        flush=True,
    )
    forward = torch.compile(model) if args.compile else model

    # Plan: the epochs that fit the budget at the measured speed, the schedule laid out over them;
    # with --checkpoint, over --epochs exactly, run over as many calls as it takes.
    teacher, teacher_log = None, None
    if args.teacher_epochs:
        kept = None
        if args.checkpoint and os.path.exists(args.checkpoint):
            kept = torch.load(args.checkpoint, map_location=device, weights_only=False).get("teacher")
        if kept is not None:  # a resumed run distils the same teacher
            teacher = Teacher().to(device)
            teacher.load_state_dict(kept["state"])
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            teacher_log = kept["log"]
        else:
            teacher, teacher_acc, teacher_s = train_teacher(data, args, device)
            teacher_log = {"epochs": args.teacher_epochs, "parameters": sum(p.numel() for p in teacher.parameters()),
                           "test_acc_fp32": teacher_acc, "seconds": round(teacher_s, 1),
                           "distill_weight": args.distill_weight}
    step_s, eval_s, fp32_eval_s = probe(forward, model, data, args, device, teacher)
    steps_per_epoch = n_train // args.batch
    epoch_s = steps_per_epoch * step_s + eval_s
    reserve = 2 * fp32_eval_s + FILES_SECONDS
    left = deadline - time.time() - reserve
    fit = int(PLAN_SHARE * left / epoch_s)
    epochs = args.epochs if args.checkpoint else max(1, min(args.epochs, fit))
    total = epochs * steps_per_epoch
    warmup = max(1, round(args.warmup * total))
    opt = make_optimizer(model, args, device)
    history, step, calls, earlier_s = [], 0, 1, 0.0
    if args.checkpoint and os.path.exists(args.checkpoint):
        state = torch.load(args.checkpoint, map_location=device, weights_only=False)
        if state["recipe"] != recipe_of(args):
            changed = {k: (v, recipe_of(args).get(k)) for k, v in state["recipe"].items() if recipe_of(args).get(k) != v}
            raise SystemExit(f"--checkpoint {args.checkpoint}: made with other settings (saved, now): {changed}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        history, step, calls, earlier_s = state["history"], state["step"], state["calls"] + 1, state["train_seconds"]
        print(f"resuming from {args.checkpoint} after epoch {len(history)} of {epochs}", flush=True)
    print(
        f"probe: {step_s * 1e3:.1f} ms/step of {args.batch} ({args.batch / step_s:,.0f} images/s), test pass "
        f"{eval_s:.1f} s bf16 / {fp32_eval_s:.1f} s fp32; plan {epochs} epochs × {steps_per_epoch} steps "
        f"({epoch_s * (epochs - len(history)):.0f} s to go, {left:.0f} s left), peak lr {args.lr:.2e}, "
        f"warm-up {warmup} steps",
        flush=True,
    )
    if fit < 1:
        print("warning: not even one epoch fits the budget; running one anyway", flush=True)

    stopped_early, pure_train_s, ran = False, 0.0, 0
    train_start = time.time()
    for epoch in range(len(history), epochs):
        t0 = time.time()
        order = torch.randperm(n_train, device=device)
        loss_sum = torch.zeros((), device=device)
        for s in range(steps_per_epoch):
            idx = order[s * args.batch : (s + 1) * args.batch]
            lr = lr_at(step, total, warmup, args.lr)
            loss_sum += train_step(
                forward, model, opt, data["train_x"][idx], data["train_y"][idx], lr, args, teacher
            )
            step += 1
        loss = loss_sum.item() / steps_per_epoch  # waits for the epoch's last step
        train_s = time.time() - t0
        pure_train_s += train_s
        ran += 1
        acc = accuracy(model, data["test_x"], data["test_y"], args.eval_batch, bf16=True)
        rate = steps_per_epoch * args.batch / train_s
        history.append(
            {"epoch": epoch + 1, "loss": round(loss, 5), "lr": lr, "images_per_s": round(rate),
             "test_acc_bf16": acc, "seconds": round(time.time() - t0, 2)}
        )
        print(
            f"epoch {epoch + 1:3d}/{epochs}  loss {loss:.4f}  lr {lr:.1e}  {rate:,.0f} img/s  "
            f"test {100 * acc:.2f} %  at {time.time() - START:.0f} s",
            flush=True,
        )
        mean_epoch = (time.time() - train_start) / ran
        over_budget = time.time() + mean_epoch > deadline - reserve
        if epoch + 1 < epochs and (over_budget or ran == args.stop_after):
            stopped_early = True
            why = "the next would overrun the budget" if over_budget else f"--stop-after {args.stop_after}"
            print(f"stopping after epoch {epoch + 1}: {why}", flush=True)
            break
    if stopped_early and args.checkpoint:
        state = {"recipe": recipe_of(args), "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "rng_cpu": torch.get_rng_state(), "history": history, "step": step, "calls": calls,
                 "train_seconds": earlier_s + time.time() - train_start}
        if device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(device)
        if teacher is not None:
            state["teacher"] = {"state": teacher.state_dict(), "log": teacher_log}
        torch.save(state, args.checkpoint + ".tmp")
        os.replace(args.checkpoint + ".tmp", args.checkpoint)
        print(f"saved the training state to {args.checkpoint}: run the same command again to go on", flush=True)
        return
    train_seconds = earlier_s + time.time() - train_start

    # Save first (a late failure keeps the weights), then evaluate in fp32: the trained weights,
    # and the weights as stored (decoded from the file's bytes, as xbar will load them).
    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    meta = {"format": "pt"}
    saved = ckpt.write_model(out, config, state, args.dtype, args.split_mb, meta)
    acc_fp32 = accuracy(model, data["test_x"], data["test_y"], args.eval_batch, bf16=False)
    stored, _ = ckpt.read_safetensors(saved["bytes"])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in stored.items()}, strict=True)
    acc_stored = accuracy(model, data["test_x"], data["test_y"], args.eval_batch, bf16=False)
    model.eval()
    with torch.no_grad():
        pixels = to_pixels(data["test_x"][:16])
        hf = check_with_transformers(config, saved["bytes"], pixels, model(pixels))
    print(f"transformers check: {hf}", flush=True)

    log = {
        "model": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads, "mlp": args.mlp,
                  "patch": args.patch, "tokens": ckpt.tokens(config), "layer_norm_eps": args.eps,
                  "parameters": params},
        "data": {"train": n_train, "test": n_test, "folder": args.data},
        "recipe": {"epochs_planned": epochs, "epochs_run": len(history), "stopped_early": stopped_early,
                   "runs": calls,
                   "max_epochs": args.epochs, "batch": args.batch, "steps": step, "steps_per_epoch": steps_per_epoch,
                   "peak_lr": args.lr, "warmup_steps": warmup, "schedule": "linear warm-up, cosine to 0",
                   "optimizer": "AdamW (0.9, 0.999), fused on CUDA", "weight_decay": args.weight_decay,
                   "label_smoothing": args.label_smoothing, "grad_clip": args.clip, "drop_path": args.drop_path,
                   "augment": {"shift": args.shift, "flip": args.flip}, "precision": "bf16 autocast",
                   "compile": args.compile, "seed": args.seed},
        "teacher": teacher_log,
        "probe": {"step_s": step_s, "test_pass_bf16_s": eval_s, "test_pass_fp32_s": fp32_eval_s},
        "history": history,
        "test_acc_fp32": acc_fp32,
        "test_acc_stored": acc_stored,
        "stored_dtype": args.dtype,
        "safetensors": {"sha256": saved["sha256"], "bytes": saved["size"], "files": saved["files"]},
        "transformers_check": hf,
        "train_seconds": round(train_seconds, 1),
        "images_per_s": round(ran * steps_per_epoch * args.batch / pure_train_s),
        "total_seconds": round(time.time() - START, 1),
        "budget_minutes": args.minutes,
        "device": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "command": " ".join(["python3"] + sys.argv),
    }
    ckpt.write_json(os.path.join(out, "train_log.json"), log)
    print(
        f"final test accuracy: fp32 {100 * acc_fp32:.2f} %, stored {args.dtype} weights in fp32 "
        f"{100 * acc_stored:.2f} %; {len(history)} epochs, {train_seconds:.0f} s training, "
        f"{time.time() - START:.0f} s in all",
        flush=True,
    )
    print(f"wrote {out}: {', '.join(saved['files'] + ['train_log.json'])}; sha256 {saved['sha256']}", flush=True)


if __name__ == "__main__":
    main()
