"""Makes the parity fixtures of test/models/parity.test.ts: small random-initialised Hugging
Face models of the four families with non-default configs, saved with save_pretrained
(safetensors), with inputs and the logits PyTorch computes for them.
Run where torch and transformers are installed:
    python3 scripts/reference/models.py OUT_DIR
"""
import json
import os
import sys

import torch
import transformers as tf

out_dir = sys.argv[1]
torch.manual_seed(0)


def spread(model, std=0.2):
    # HF's init (std 0.02) makes near-constant logits; larger weights make a sharper check
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight") or "layernorm" in name and name.endswith(".weight"):
                p.copy_(1 + std * torch.randn_like(p))
            else:
                p.copy_(std * torch.randn_like(p))
    return model.eval()


def save(name, model, inputs, note):
    d = os.path.join(out_dir, name)
    model.save_pretrained(d, safe_serialization=True)
    with torch.no_grad():
        logits = model(**inputs).logits
    payload = {k: v.tolist() for k, v in inputs.items()}
    payload["logits"] = logits.tolist()
    payload["note"] = note
    payload["transformers"] = tf.__version__
    payload["torch"] = torch.__version__
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(payload, f)
    print(name, sum(p.numel() for p in model.parameters()), "params", tuple(logits.shape))


vit = tf.ViTConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=80,
                   image_size=32, patch_size=8, num_channels=3, qkv_bias=False, layer_norm_eps=1e-6,
                   hidden_act="gelu_new", num_labels=5)
save("vit", spread(tf.ViTForImageClassification(vit)), {"pixel_values": torch.randn(3, 3, 32, 32)},
     "qkv_bias false, gelu_new, eps 1e-6, 5 labels")

deit = tf.DeiTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     image_size=24, patch_size=6, num_channels=1, layer_norm_eps=1e-12, num_labels=4)
save("deit-distilled", spread(tf.DeiTForImageClassificationWithTeacher(deit)),
     {"pixel_values": torch.randn(2, 1, 24, 24)}, "with teacher head, 1 channel, patch 6")
save("deit", spread(tf.DeiTForImageClassification(deit)), {"pixel_values": torch.randn(2, 1, 24, 24)},
     "plain DeiT head")


def text_inputs(vocab, pad, batch, seq, types):
    ids = torch.randint(3, vocab, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    for r in range(1, batch):  # later rows padded at the end
        n = seq - 2 * r
        ids[r, n:] = pad
        mask[r, n:] = 0
    tt = torch.randint(0, types, (batch, seq)) * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


bert = tf.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=40, type_vocab_size=3,
                     layer_norm_eps=1e-7, hidden_act="relu", num_labels=3, pad_token_id=0)
save("bert", spread(tf.BertForSequenceClassification(bert)), text_inputs(120, 0, 3, 11, 3),
     "relu, 3 token types, eps 1e-7, padded rows")

roberta = tf.RobertaConfig(vocab_size=100, hidden_size=24, num_hidden_layers=3, num_attention_heads=2,
                           intermediate_size=40, max_position_embeddings=34, type_vocab_size=1,
                           layer_norm_eps=1e-5, pad_token_id=1, num_labels=1, problem_type="regression",
                           hidden_act="gelu")
save("roberta", spread(tf.RobertaForSequenceClassification(roberta)), text_inputs(100, 1, 3, 9, 1),
     "regression head, padding-dependent positions")
