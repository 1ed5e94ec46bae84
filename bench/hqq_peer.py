"""HQQ references computed with mobiusml/hqq's own Quantizer (a cross-check; quantlab never runs
Python): every decoder linear of a model quantized by hqq's Quantizer.quantize (optimize=True,
float32 on CPU), its scales / zeros meta-quantized to 8 bits the way hqq's HQQLinear did it
(scales: channel-wise groups of 128; zeros: one range per tensor), dequantized, and the model's
perplexity on the first 32 windows of 512 of wiki.test.raw (SOURCES.md's protocol).

    .venv/bin/python bench/hqq_peer.py HQQ_SOURCE_DIR FIXTURES_DIR
HQQ_SOURCE_DIR: a checkout of mobiusml/hqq (its hqq/ package; e0b1d00 gave the numbers in
tests/quant/hqq_model.test.ts); needs torch, transformers, tokenizers and termcolor.
"""
import sys, math, torch
sys.path.insert(0, sys.argv[1])
from hqq.core.quantize import Quantizer
from transformers import AutoModelForCausalLM
from tokenizers import Tokenizer
F = sys.argv[2]

def meta_quant(x, channel_wise, group_size):
    q, m = Quantizer.quantize(x, nbits=8, channel_wise=channel_wise, group_size=group_size, optimize=False,
                              axis=0, bitpack=False, compute_dtype=torch.float32, device="cpu")
    return ((q.float() - m["zero"]) * m["scale"]).reshape(m["shape"])

def deq(W, nbits, g, axis, rz, qs, qz):
    W_q, m = Quantizer.quantize(W, nbits=nbits, channel_wise=True, group_size=g, optimize=True, round_zero=rz,
                                axis=axis, bitpack=False, compute_dtype=torch.float32, device="cpu")
    scale, zero = m["scale"], m["zero"]
    if qs: scale = meta_quant(scale, True, 128)
    if qz: zero = meta_quant(zero, False, None)
    return ((W_q.float() - zero) * scale).reshape(m["shape"])

def run(nbits, g, axis, rz, qs, qz):
    model = AutoModelForCausalLM.from_pretrained(f"{F}/tiny-llama", dtype=torch.float32).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for mod in [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj,
                        layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj]:
                mod.weight.copy_(deq(mod.weight.data.clone(), nbits, g, axis, rz, qs, qz))
    ids = Tokenizer.from_file(f"{F}/tiny-llama/tokenizer.json").encode(open(f"{F}/text/wiki.test.raw", encoding="utf-8").read()).ids
    nll = 0.0
    with torch.no_grad():
        for w in range(32):
            x = torch.tensor([ids[w * 512:(w + 1) * 512]])
            logits = model(x).logits[0].float()
            nll += torch.nn.functional.cross_entropy(logits[:-1], x[0, 1:], reduction="sum").item()
    return math.exp(nll / (32 * 511))

# (nbits, group_size, axis, round_zero, quant_scale, quant_zero)
for cfg in [(4, 64, 1, False, False, False), (4, 64, 1, True, False, False), (4, 64, 0, True, False, True),
            (3, 64, 0, False, False, True), (2, 16, 0, False, True, True)]:
    print(cfg, f"{run(*cfg):.4f}", flush=True)
