"""Checks that transformers loads the models xbar ships, and records what PyTorch computes for
them on the first examples of their shipped data slices (test/models/shipped-parity.test.ts
compares xbar's token ids and logits with these).
Run where torch and transformers are installed, from the repository root:
    python3 scripts/reference/shipped.py OUT_DIR MODEL_DIR...
"""
import gzip
import json
import os
import sys

# Python puts this script's folder first on sys.path, and scripts/reference/tokenizers.py there
# would shadow the `tokenizers` package that transformers imports: drop that folder.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers as tf  # noqa: E402

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
N = 16


def sst2_sentences(n):
    with open("data/sst2-demo/dev.tsv") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1 : n + 1]
    return [r[0] for r in rows]


def fmnist_images(n):
    with gzip.open("data/fashion-mnist-demo/t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return raw[: n * 784].reshape(n, 1, 28, 28)


for model_dir in sys.argv[2:]:
    name = os.path.basename(model_dir.rstrip("/"))
    config = tf.AutoConfig.from_pretrained(model_dir)
    with torch.no_grad():
        if config.model_type == "bert":
            model = tf.BertForSequenceClassification.from_pretrained(model_dir).eval()
            tok = tf.BertTokenizer.from_pretrained(model_dir)
            texts = sst2_sentences(N)
            enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
            logits = model(**enc).logits
            payload = {"texts": texts, "input_ids": enc["input_ids"].tolist()}
        else:
            model = tf.ViTForImageClassification.from_pretrained(model_dir).eval()
            proc = json.load(open(os.path.join(model_dir, "preprocessor_config.json")))
            mean, std = proc["image_mean"], proc["image_std"]
            mean = mean[0] if isinstance(mean, list) else mean
            std = std[0] if isinstance(std, list) else std
            # the card's preprocessing: v/255 normalised (28×28, no resize)
            pixels = (torch.tensor(fmnist_images(N), dtype=torch.float32) / 255 - mean) / std
            logits = model(pixel_values=pixels).logits
            payload = {"images": N}
    payload["logits"] = logits.tolist()
    payload["transformers"] = tf.__version__
    payload["torch"] = torch.__version__
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(payload, f)
    print(name, "loaded by transformers", tf.__version__, "logits", tuple(logits.shape))
