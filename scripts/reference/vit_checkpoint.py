"""The files of a Hugging Face ViTForImageClassification model folder, and Fashion-MNIST's IDX
files, with numpy alone (no torch, transformers or safetensors): train_vit_fmnist.py saves its
model through this module, and the same functions make random-initialised folders to check
that xbar loads what the script writes.

    python3 scripts/reference/vit_checkpoint.py random OUT_DIR [--hidden 384 --layers 12
        --heads 6 --mlp 1536 --patch 2] [--dtype f16|f32] [--split-mb MB] [--seed 0]

writes a random-initialised folder (config.json, preprocessor_config.json, model.safetensors).
"""
import argparse
import gzip
import hashlib
import json
import os
import struct

import numpy as np

FASHION_MNIST_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# The pixel transform of models/vit-fmnist (v/255, then (v - 0.5)/0.5): training uses it too, so
# that the model sees in training what xbar feeds it.
PREPROCESSOR = {
    "image_processor_type": "ViTImageProcessor",
    "do_resize": False,
    "size": {"height": 28, "width": 28},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": 0.5,
    "image_std": 0.5,
}

# ---------------------------------------------------------------------------------------------
# Fashion-MNIST


def read_idx(path):
    """An IDX file (gzip or plain) as a numpy uint8 array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()}, want 000008xx)")
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header shape {shape} needs {int(np.prod(shape))} bytes, {data.size} follow it")
    return data.reshape(shape)


def load_fashion_mnist(folder):
    """The four Fashion-MNIST arrays: images (n, 28, 28) uint8, labels (n,) uint8."""
    out = {}
    for key, name in FASHION_MNIST_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"--data {folder}: {name} is missing (want {', '.join(FASHION_MNIST_FILES.values())})")
        out[key] = read_idx(path)
    for split in ("train", "test"):
        images, labels = out[f"{split}_images"], out[f"{split}_labels"]
        if images.shape[1:] != (28, 28) or labels.shape != images.shape[:1] or labels.max() > 9:
            raise ValueError(f"--data {folder}: {split} images {images.shape} / labels {labels.shape} are not Fashion-MNIST's")
    return out


# ---------------------------------------------------------------------------------------------
# The model's config and tensor names


def vit_config(hidden, layers, heads, mlp, patch, layer_norm_eps, image_size=28, channels=1):
    """config.json of a ViTForImageClassification for Fashion-MNIST (the keys of models/vit-fmnist)."""
    if hidden % heads:
        raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
    if image_size % patch:
        raise ValueError(f"image size {image_size} is not a multiple of patch {patch}")
    return {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": mlp,
        "hidden_act": "gelu",
        "layer_norm_eps": layer_norm_eps,
        "id2label": {str(i): name for i, name in enumerate(FASHION_MNIST_LABELS)},
        "label2id": {name: i for i, name in enumerate(FASHION_MNIST_LABELS)},
        "image_size": image_size,
        "patch_size": patch,
        "num_channels": channels,
        "qkv_bias": True,
    }


def tokens(config):
    """Patches + the class token."""
    return (config["image_size"] // config["patch_size"]) ** 2 + 1


def hf_vit_shapes(config):
    """Every tensor of ViTForImageClassification's state dict: name -> shape, in HF's module order."""
    d, f = config["hidden_size"], config["intermediate_size"]
    c, p = config["num_channels"], config["patch_size"]
    e = "vit.embeddings"
    shapes = {
        f"{e}.cls_token": (1, 1, d),
        f"{e}.position_embeddings": (1, tokens(config), d),
        f"{e}.patch_embeddings.projection.weight": (d, c, p, p),
        f"{e}.patch_embeddings.projection.bias": (d,),
    }
    linears = [
        ("attention.attention.query", d, d),
        ("attention.attention.key", d, d),
        ("attention.attention.value", d, d),
        ("attention.output.dense", d, d),
        ("intermediate.dense", f, d),
        ("output.dense", d, f),
    ]
    for i in range(config["num_hidden_layers"]):
        layer = f"vit.encoder.layer.{i}"
        for name, out, inp in linears:
            shapes[f"{layer}.{name}.weight"] = (out, inp)
            if config["qkv_bias"] or not name.startswith("attention.attention."):
                shapes[f"{layer}.{name}.bias"] = (out,)
        for norm in ("layernorm_before", "layernorm_after"):
            shapes[f"{layer}.{norm}.weight"] = (d,)
            shapes[f"{layer}.{norm}.bias"] = (d,)
    shapes["vit.layernorm.weight"] = (d,)
    shapes["vit.layernorm.bias"] = (d,)
    labels = len(config["id2label"])
    shapes["classifier.weight"] = (labels, d)
    shapes["classifier.bias"] = (labels,)
    return shapes


def random_state(config, seed=0, std=0.02):
    """A random-initialised state dict as HF initialises ViT (N(0, std²) weights, LayerNorm 1/0)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in hf_vit_shapes(config).items():
        if "layernorm" in name:
            state[name] = np.full(shape, 1.0 if name.endswith(".weight") else 0.0, dtype=np.float32)
        elif name.endswith(".bias"):
            state[name] = np.zeros(shape, dtype=np.float32)
        else:
            state[name] = (std * rng.standard_normal(shape)).astype(np.float32)
    return state


# ---------------------------------------------------------------------------------------------
# Safetensors: an 8-byte little-endian header length N, N bytes of JSON header (padded with
# spaces to a multiple of 8) {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
# then the tensors' little-endian bytes back to back; offsets count from the data's start.

STORAGE = {"f16": ("F16", np.dtype("<f2")), "f32": ("F32", np.dtype("<f4"))}


def safetensors_bytes(state, dtype="f16", metadata=None):
    """The .safetensors file of float tensors `state` (name -> array), stored as `dtype`."""
    code, np_dtype = STORAGE[dtype]
    header, chunks, offset = {}, [], 0
    for name in sorted(state):
        value = np.asarray(state[name], dtype=np.float32)
        stored = np.ascontiguousarray(value.astype(np_dtype))
        if not np.isfinite(stored).all():
            raise ValueError(f"tensor {name}: not finite as {code} (max |value| {np.abs(value).max()})")
        raw = stored.tobytes()
        header[name] = {"dtype": code, "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt", **(metadata or {})}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def read_safetensors(data):
    """The tensors of .safetensors bytes as float32 arrays, and the metadata."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    body = memoryview(data)[8 + length :]
    tensors = {}
    for name, entry in header.items():
        np_dtype = {code: t for code, t in STORAGE.values()}[entry["dtype"]]
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype=np_dtype).astype(np.float32).reshape(entry["shape"])
    return tensors, metadata


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def write_model(out_dir, config, state, dtype="f16", split_mb=None, metadata=None):
    """Writes config.json, preprocessor_config.json and the weights. With split_mb the weights go
    to model.safetensors.part0, .part1, ... (plain byte slices of at most split_mb MiB, in order)
    and no whole file; model.safetensors.sha256 names the whole file's hash either way.
    Returns the file's bytes, hash and the names written."""
    shapes = hf_vit_shapes(config)
    got = {k: tuple(np.shape(v)) for k, v in state.items()}
    if got != shapes:
        wrong = sorted(set(got.items()) ^ set(shapes.items()))[:6]
        raise ValueError(f"state dict differs from ViTForImageClassification's names/shapes: {wrong}")
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "config.json"), config)
    write_json(os.path.join(out_dir, "preprocessor_config.json"), PREPROCESSOR)
    data = safetensors_bytes(state, dtype, metadata)
    digest = hashlib.sha256(data).hexdigest()
    files = ["config.json", "preprocessor_config.json"]
    if split_mb:
        size = int(split_mb * 2**20)
        for i, start in enumerate(range(0, len(data), size)):
            name = f"model.safetensors.part{i}"
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(data[start : start + size])
            files.append(name)
    else:
        with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
            f.write(data)
        files.append("model.safetensors")
    with open(os.path.join(out_dir, "model.safetensors.sha256"), "w") as f:
        f.write(f"{digest}  model.safetensors\n")
    files.append("model.safetensors.sha256")
    return {"bytes": data, "sha256": digest, "size": len(data), "files": files}


def main():
    ap = argparse.ArgumentParser(description="Writes a random-initialised ViT model folder.")
    ap.add_argument("command", choices=["random"])
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--mlp", type=int, default=1536)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--dtype", choices=sorted(STORAGE), default="f16")
    ap.add_argument("--split-mb", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    config = vit_config(a.hidden, a.layers, a.heads, a.mlp, a.patch, a.eps)
    state = random_state(config, a.seed)
    saved = write_model(a.out, config, state, a.dtype, a.split_mb)
    back, _ = read_safetensors(saved["bytes"])
    stored_dtype = STORAGE[a.dtype][1]
    assert all(np.array_equal(back[k], state[k].astype(stored_dtype).astype(np.float32)) for k in state)
    params = sum(int(np.prod(s)) for s in hf_vit_shapes(config).values())
    print(f"{a.out}: {params:,} parameters, {saved['size']:,} bytes {a.dtype}, sha256 {saved['sha256'][:16]}…, files {saved['files']}")


if __name__ == "__main__":
    main()
