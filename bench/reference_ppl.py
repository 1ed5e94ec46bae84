"""Perplexity and eval throughput of a model with transformers (CPU, float32), with the same
protocol as quantlab's `deno task bench`: the text as-is, tokenized once with special tokens,
non-overlapping windows of SEQLEN, tail dropped, ppl = exp(mean NLL of all predictions).

A cross-check and a speed yardstick only; quantlab itself never runs Python.

    .venv/bin/python bench/reference_ppl.py MODEL_DIR TEXT_FILE [SEQLEN] [MAX_WINDOWS]
(needs torch and transformers, e.g. from the local pip mirror)
"""
import json
import math
import sys
import time

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main():
    model_dir, text_file = sys.argv[1], sys.argv[2]
    seqlen = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    max_windows = int(sys.argv[4]) if len(sys.argv) > 4 else None
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    seqlen = min(seqlen, model.config.max_position_embeddings)
    ids = Tokenizer.from_file(f"{model_dir}/tokenizer.json").encode(open(text_file, encoding="utf-8").read()).ids
    windows = len(ids) // seqlen if max_windows is None else min(len(ids) // seqlen, max_windows)
    nll, t0 = 0.0, time.time()
    with torch.no_grad():
        for w in range(windows):
            x = torch.tensor([ids[w * seqlen:(w + 1) * seqlen]])
            logits = model(x).logits[0].float()
            nll += torch.nn.functional.cross_entropy(logits[:-1], x[0, 1:], reduction="sum").item()
    seconds = time.time() - t0
    print(json.dumps({
        "model": model_dir, "text": text_file, "seqlen": seqlen, "windows": windows,
        "ppl": math.exp(nll / (windows * (seqlen - 1))), "seconds": seconds,
        "tokens_per_second": windows * seqlen / seconds, "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
