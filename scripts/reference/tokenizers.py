"""Makes test/fixtures/tokenizers/reference.json for test/io/tokenizer.test.ts: the ids that
transformers' fast tokenizers (BertTokenizerFast with do_lower_case=True, RobertaTokenizerFast),
built from the legacy vocabulary files, give for the first 200 SST-2 dev sentences, the first
100 MRPC dev pairs and a few tricky strings, truncated to 128 tokens.
Run where transformers is installed (no torch needed):
    python3 scripts/reference/tokenizers.py BERT_DIR ROBERTA_DIR GLUE_DIR [OUT]
e.g., from the vocabularies and GLUE slices in test/fixtures (test/fixtures/README.md):
    python3 scripts/reference/tokenizers.py test/fixtures/vocab/bert-base-uncased \\
         test/fixtures/vocab/roberta-base test/fixtures/glue
"""
import json
import os
import sys

# this file's name would shadow the tokenizers package: drop its folder from the import path
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import tokenizers  # noqa: E402
import transformers as tf  # noqa: E402

bert_dir, roberta_dir, glue_dir = sys.argv[1:4]
out = sys.argv[4] if len(sys.argv) > 4 else os.path.join(
    os.path.dirname(__file__), "..", "..", "test", "fixtures", "tokenizers", "reference.json")
MAX_LENGTH = 128


def tsv_rows(path):
    # utf-8-sig drops MRPC's BOM; fields are split by hand since sentences hold bare quotes
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = f.read().split("\n")
    header = lines[0].rstrip("\r").split("\t")
    return [dict(zip(header, line.rstrip("\r").split("\t"))) for line in lines[1:] if line.strip()]


sst2 = [(r["sentence"], None) for r in tsv_rows(os.path.join(glue_dir, "SST-2", "dev.tsv"))[:200]]
mrpc = [(r["#1 String"], r["#2 String"]) for r in tsv_rows(os.path.join(glue_dir, "MRPC", "dev.tsv"))[:100]]
tricky = [
    ("Café naïve résumé façade Ångström", None),
    ("北京欢迎你，我爱自然语言处理。", None),
    ("emoji 😀🎉👍🏽 and ZWJ 👨‍👩‍👧", None),
    ("multiple    spaces\tand\ttabs\n\nand newlines   ", None),
    ("   leading and trailing spaces   ", None),
    ("supercalifragilisticexpialidocious " + "a" * 120 + " pneumonoultramicroscopicsilicovolcanoconiosis", None),
    ("", None),
    # "<mask>" after a space is left out: transformers 4 strips that space (lstrip), 5 keeps it
    ("Special tokens in text: [CLS] [SEP] [MASK] <s> </s><mask>", None),
    ("Mixed ÉCOLE Straße İstanbul ǅ ﬁ", None),
    ("don't can't I'm we'll they've she's it'd", None),
    ("word " * 200, None),  # truncated to MAX_LENGTH
    ("a long first segment " * 40, "short second"),  # pair truncation, longest_first
    ("short first", "a long second segment " * 40),
    ("x " * 100, "y " * 100),  # both cut, odd budget split
    ("Café 😀", "北京 naïve"),
]
cases = sst2 + mrpc + tricky


def encode_all(tok):
    rows = []
    for a, b in cases:
        enc = tok(a, b, max_length=MAX_LENGTH, truncation=True, return_token_type_ids=True)
        row = {"textA": a}
        if b is not None:
            row["textB"] = b
        row["input_ids"] = enc["input_ids"]
        row["token_type_ids"] = enc["token_type_ids"]
        row["attention_mask"] = enc["attention_mask"]
        rows.append(row)
    return rows


# transformers 5 dropped the *Fast names (its BertTokenizer/RobertaTokenizer are the Rust-backed
# ones) and ignores vocab_file=; from_pretrained on a folder of legacy files reads them in both
BertFast = getattr(tf, "BertTokenizerFast", None) or tf.BertTokenizer
RobertaFast = getattr(tf, "RobertaTokenizerFast", None) or tf.RobertaTokenizer
for d, files in ((bert_dir, ["vocab.txt"]), (roberta_dir, ["vocab.json", "merges.txt"])):
    assert not os.path.exists(os.path.join(d, "tokenizer.json")), f"{d}: expected legacy files only"
    for name in files:
        assert os.path.exists(os.path.join(d, name)), f"{d}: {name} missing"
bert = BertFast.from_pretrained(bert_dir, do_lower_case=True)
roberta = RobertaFast.from_pretrained(roberta_dir)
assert bert.is_fast and roberta.is_fast, "need the Rust-backed (fast) tokenizers"
# a silently empty vocabulary would otherwise make a fixture of [UNK]s
assert bert("Hello, world!")["input_ids"] == [101, 7592, 1010, 2088, 999, 102], bert("Hello, world!")
assert roberta("Hello world")["input_ids"] == [0, 31414, 232, 2], roberta("Hello world")

payload = {
    "note": f"max_length {MAX_LENGTH}, truncation=True; first 200 SST-2 dev, first 100 MRPC dev pairs, tricky strings",
    "transformers": tf.__version__,
    "tokenizers": tokenizers.__version__,
    "max_length": MAX_LENGTH,
    "bert": encode_all(bert),
    "roberta": encode_all(roberta),
}
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
with open(out, "w", encoding="utf-8") as f:
    json.dump(payload, f, ensure_ascii=False)
print(out, len(payload["bert"]), "bert,", len(payload["roberta"]), "roberta entries")
