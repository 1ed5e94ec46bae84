"""AWQ as AutoAWQ's quantizer runs it (casper-hansen/AutoAWQ, awq/quantize/quantizer.py and
scale.py; methods.md), written independently here in torch float32 for Llama-family checkpoints:
the cross-check for lib/quant/awq.ts. Per decoder block, on the FP model's hidden states:
  scale search per group (s = x̄^α / (w̄^(1−α) + 1e-4), normalised by √(max·min), 20 α, MSE of the
  inspected module's output), folding into the previous op, clipping search (every linear but
  q/k, 10 shrinks to 0.5, ≤ 512 sampled tokens), asymmetric min/max fake quantization (scales
  rounded to fp16 as the GEMM checkpoint stores them). Then perplexity on the first windows of a
  text with the GPTQ/AWQ protocol. Calibration windows: Python random, seed 0, as GPTQ draws them.

    python3 bench/awq_reference.py MODEL_DIR CALIB_TEXT EVAL_TEXT BITS GROUP NSAMPLES [MAX_WINDOWS] [--no-duo] [--no-clip]
Prints one JSON line. quantlab itself never runs Python.
"""
import json
import math
import random
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

SEQLEN, GRID, SHRINK_STEPS, CLIP_TOKENS, CHUNK = 512, 20, 10, 512, 16


def qdq(w, bits, g, fp16_scales=False):
    """Asymmetric min/max quantize-dequantize of w in groups of g along its last dimension."""
    shape = w.shape
    w = w.reshape(-1, g)
    hi, lo = w.amax(1, keepdim=True), w.amin(1, keepdim=True)
    maxq = 2**bits - 1
    s = (hi - lo).clamp(min=1e-5) / maxq
    z = (-torch.round(lo / s)).clamp(0, maxq)
    q = torch.clamp(torch.round(w / s) + z, 0, maxq)
    if fp16_scales:
        s = s.half().float()
    return ((q - z) * s).reshape(shape)


def chunks(x):
    return [x[i:i + CHUNK] for i in range(0, x.shape[0], CHUNK)]


@torch.no_grad()
def search_scale(lins, x, run, bits, g, duo):
    w = torch.cat([l.weight for l in lins])
    wa = w.abs().reshape(-1, g)
    w_mean = (wa / (wa.amax(1, keepdim=True) + 1e-6)).reshape(w.shape).mean(0)
    x_mean = x.abs().reshape(-1, x.shape[-1]).mean(0)
    y0 = [run(c) for c in chunks(x)]
    orig = [l.weight.data.clone() for l in lins]
    best, losses = None, []
    for a in range(GRID):
        r = a / GRID
        s = (x_mean.pow(r) / (w_mean.pow(1 - r) + 1e-4)) if duo else x_mean.pow(r)
        s = s.clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()
        for l, w0 in zip(lins, orig):
            l.weight.data = qdq(w0 * s, bits, g) / s
        loss = sum((run(c) - y).pow(2).sum().item() for c, y in zip(chunks(x), y0)) / sum(y.numel() for y in y0)
        losses.append(loss)
        if best is None or loss < best[0]:
            best = (loss, r, s.clone())
        for l, w0 in zip(lins, orig):
            l.weight.data = w0.clone()
    return best[1], best[2], losses


@torch.no_grad()
def clip(lin, x, bits, g):
    w = lin.weight.data
    co, ci = w.shape
    x = x.reshape(-1, ci)
    x = x[::max(1, x.shape[0] // CLIP_TOKENS)].reshape(1, -1, ci // g, g)
    out = []
    for r0 in range(0, co, 64):
        wg = w[r0:r0 + 64].reshape(-1, 1, ci // g, g)
        org_max = wg.abs().amax(-1, keepdim=True)
        best, min_err = org_max.clone(), torch.full_like(org_max, 1e9)
        org_out = (x * wg).sum(-1)
        for i in range(SHRINK_STEPS):
            mv = org_max * (1 - i / GRID)
            q = qdq(torch.clamp(wg, -mv, mv), bits, g)
            err = ((x * q).sum(-1) - org_out).pow(2).mean(1).view(min_err.shape)
            m = err < min_err
            min_err[m], best[m] = err[m], mv[m]
        out.append(torch.clamp(wg, -best, best).reshape(-1, ci))
    lin.weight.data = torch.cat(out)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    duo, do_clip = "--no-duo" not in sys.argv, "--no-clip" not in sys.argv
    model_dir, calib, evalf, bits, g, nsamples = args[:6]
    bits, g, nsamples = int(bits), int(g), int(nsamples)
    max_windows = int(args[6]) if len(args) > 6 else 32
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = tok.encode(open(calib, encoding="utf-8").read()).ids
    random.seed(0)
    starts = [random.randint(0, len(ids) - SEQLEN - 1) for _ in range(nsamples)]
    calib_ids = torch.tensor([ids[i:i + SEQLEN] for i in starts])

    layers = model.model.layers
    caught = {}

    def catch(_m, args, kwargs):
        caught["h"], caught["kw"] = args[0] if args else kwargs.pop("hidden_states"), kwargs
        raise StopIteration

    hook = layers[0].register_forward_pre_hook(catch, with_kwargs=True)
    with torch.no_grad():
        try:
            model(calib_ids)
        except StopIteration:
            pass
    hook.remove()
    h, kw = caught["h"], caught["kw"]
    attn_kw = {k: kw[k] for k in ("position_embeddings", "attention_mask") if k in kw}
    alphas = []
    for li, layer in enumerate(layers):
        feats = {}
        named = {n: m for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)}
        hooks = [m.register_forward_hook(lambda m, i, o, n=n: feats.setdefault(n, []).append(i[0].detach()))
                 for n, m in named.items()]
        with torch.no_grad():
            outs = [layer(c, **kw) for c in chunks(h)]
            nxt = torch.cat([o[0] if isinstance(o, tuple) else o for o in outs])
        for hk in hooks:
            hk.remove()
        feats = {n: torch.cat(v) for n, v in feats.items()}
        a, m = layer.self_attn, layer.mlp
        groups = [(layer.input_layernorm, [a.q_proj, a.k_proj, a.v_proj], "self_attn.q_proj",
                   lambda x: a(hidden_states=x, **attn_kw)[0])]
        if a.v_proj.weight.shape == a.o_proj.weight.shape:
            groups.append((a.v_proj, [a.o_proj], "self_attn.o_proj", a.o_proj))
        groups += [(layer.post_attention_layernorm, [m.gate_proj, m.up_proj], "mlp.gate_proj", m),
                   (m.up_proj, [m.down_proj], "mlp.down_proj", m.down_proj)]
        found = [search_scale(lins, feats[name], run, bits, g, duo) for _, lins, name, run in groups]
        for (prev, lins, name, _), (alpha, s, losses) in zip(groups, found):
            alphas.append({"block": li, "group": name, "alpha": alpha, "losses": losses})
            with torch.no_grad():
                if isinstance(prev, torch.nn.Linear):
                    prev.weight.div_(s.view(-1, 1))
                    if prev.bias is not None:
                        prev.bias.div_(s)
                else:
                    prev.weight.div_(s)
                for l in lins:
                    l.weight.mul_(s.view(1, -1))
            for n, l in named.items():
                if any(l is x for x in lins):
                    feats[n] = feats[n] / s
        with torch.no_grad():
            for n, l in named.items():
                if do_clip and not any(t in n for t in ("q_", "k_", "query", "key", "Wqkv")):
                    clip(l, feats[n], bits, g)
                l.weight.data = qdq(l.weight.data, bits, g, fp16_scales=True)
        h = nxt

    ev = tok.encode(open(evalf, encoding="utf-8").read()).ids
    windows = min(len(ev) // SEQLEN, max_windows)
    nll = 0.0
    with torch.no_grad():
        for w in range(windows):
            x = torch.tensor([ev[w * SEQLEN:(w + 1) * SEQLEN]])
            logits = model(x).logits[0]
            nll += torch.nn.functional.cross_entropy(logits[:-1], x[0, 1:], reduction="sum").item()
    print(json.dumps({"bits": bits, "group_size": g, "nsamples": nsamples, "duo_scaling": duo, "clip": do_clip,
                      "windows": windows, "ppl": math.exp(nll / (windows * (SEQLEN - 1))), "alphas": alphas}))


if __name__ == "__main__":
    main()
