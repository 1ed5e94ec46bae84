// The --help text of `deno task bench`.

import { DATASET_NAMES } from "../../datasets/datasets.ts";
import { METHODS } from "./options.ts";
import { PRESETS } from "./presets.ts";

export const HELP =
  `deno task bench — models × datasets × methods × bits × group sizes → perplexity, speed and
memory rows (OUT/results.jsonl), a manifest, figures and tables. With no flags: --preset smoke.

  deno task bench [flags]            run a matrix
  deno task bench merge OUT DIR...   join shard outputs (and write their figures)
  deno task figures DIR              regenerate DIR's figures and tables from its rows

  --preset NAME        ${
    Object.entries(PRESETS).map(([k, p]) => `${k}: ${p.description}`).join("\n                       ")
  }
  --config FILE        JSON object of flag → value (e.g. {"methods": "gptq", "act-order": true}),
                       validated like the flags; the command line overrides it, it overrides the preset
  --model ID|DIR       Hub repo id (downloaded into the HF_HOME cache; HF_ENDPOINT, HF_TOKEN honoured)
                       or a local folder (config.json, *.safetensors, tokenizer.json); repeatable.
                       Llama, Mistral, Qwen2 and OPT architectures.
  --dataset NAME|FILE  ${DATASET_NAMES.join(", ")} (from the Hub, GPTQ's protocols) or a UTF-8
                       text file used as-is; repeatable (default wikitext2)
  --methods LIST       comma-separated; available now: ${METHODS.join(", ")} (default fp)
  --bits LIST          bit widths for quantizing methods (default 4; e.g. 8,4,3)
  --group-size LIST    group sizes along the input dimension (-1 = per-channel); default per
                       method as its reference: gptq -1, hqq 64, nf4/fp4 64, rtn/awq/autoround 128
  --seqlen N           window length in tokens (default 2048, capped at the model's positions)
  --max-windows K      evaluate only the first K windows (default: all)
  --seed N             seed for calibration sampling (default 0)
  --rtn-grid G         RTN's grid: include-zero (GPTQ's, default) or minmax (AWQ's
                       pseudo_quantize_tensor: raw min/max with a zero-point)
  --quantize-head      quantize lm_head too (rtn, hqq, nf4, fp4, bnb-int8; embeddings stay FP,
                       a tied head gets its own tensors); gptq, awq, autoround refuse it

GPTQ (defaults are the IST-DASLab reference's):
  --calibration NAME|FILE  calibration data for gptq, awq, autoround: a dataset name (its train
                       split) or a UTF-8 text file
  --nsamples N         calibration windows (default 128)
  --calib-seqlen N     tokens per window (default 2048, capped at the model's positions)
  --sym                symmetric grid (default asymmetric)
  --act-order          quantize columns by descending diag H (desc_act), with g_idx
  --static-groups      group params from the original weights (g_idx stays monotone)
  --no-true-sequential collect every layer's inputs in one FP pass per block
  --fp-inputs          feed each block the FP model's hidden states (default: quantized prefix)
  --percdamp X         damping, fraction of mean diag H (default 0.01; raised on failure)
  --blocksize N        columns per lazy batch (default 128)
  --export DIR         write each GPTQ model as an AutoGPTQ v1 checkpoint DIR/<model>-gptq-w<b>-g<g>
                       (AWQ: AutoAWQ GEMM, 4-bit; HQQ: DIR/<model>-hqq-w<b>-g<g>; nf4/fp4/bnb-int8:
                       bitsandbytes layouts)

AWQ (AutoAWQ's defaults: asymmetric with zero-point, grid of 20 α, duo scaling, clipping search;
its calibration is 128 windows of 512 tokens: pass --calib-seqlen 512):
  --no-duo-scaling     s = s_x^α alone (the paper's form) instead of s_x^α / s_w^(1−α)
  --no-clip            skip the clipping search

AutoRound (intel/auto-round's defaults: 200 iterations of signed gradient descent per block, batch 8,
lr 1/iters, min/max tuning, symmetric full-range grid; its calibration is 128 windows of 2048):
  --recipe NAME        default (200 iters), light (50 iters, lr 5e-3) or best (1000 iters; with
                       512 samples when --nsamples is not given)
  --iters N            iterations per block (overrides the recipe; 0 = rounding to the same grid)
  --lr X               learning rate (default 1/iters; 2/iters for ≤ 3 bits with ≥ 1000 iters)
  --minmax-lr X        learning rate of the min/max scale factors (default: lr)
  --autoround-asym     asymmetric grid with zero-point (default symmetric, as the reference)
  --no-minmax          tune only the rounding, not the min/max scale factors
  (--export writes auto-round's own format, auto_round:auto_gptq: DIR/<model>-autoround-w<b>-g<g>)

HQQ (calibration-free; defaults are mobiusml/hqq's: p = 0.7, beta 10, kappa 1.01, 20 steps, early stop):
  --axis 0|1           groups along the input (1, default: packed kernels) or strided along the
                       output dimension (0, Quantizer.quantize's default; runs dequantized)
  --hqq-slow           the reference's slow solver: 100 steps, no early stop
  --hqq-meta           8-bit meta-quantization of scales (groups of 128) and zeros (the 2-bit g16 recipe)

bitsandbytes 4-bit (nf4, fp4; calibration-free; --group-size is the blocksize, default 64):
  --double-quant LIST  on, off or on,off: 8-bit quantization of the absmax values (default on, as QLoRA)
  --int8-threshold X   bnb-int8 (LLM.int8()): input columns with any |x| ≥ X take the FP path
                       (default 6.0 as the paper and transformers; 0 = no decomposition)

Memory:
  --gpu-memory SIZE    GPU memory budget (bytes, or 24GB, 80GiB, 512MiB, ...): every buffer the run
                       holds stays under it. Models that fit run resident; otherwise decoder blocks
                       stay in host memory and are streamed through the GPU one at a time (the log
                       says which and why; speed rows are then skipped). Too small: refused before
                       work with the arithmetic. Default: no budget, everything resident

Speed, scale-out and output:
  --decode-tokens N    greedy decode of N tokens per cell for decode tokens/s (default 32; 0 = skip)
  --gemv-reps N        timed repetitions of each block-0 linear at batch 1 (GEMV µs, GB/s; default 5; 0 = skip)
  --quick              cap windows (4), calibration (16 × 512), AutoRound iterations (10), decode (8)
  --shard i/n          run only cells i, i+n, i+2n, ... of the matrix (0-based), for runner matrices
  --resume             keep OUT's finished rows and run only the missing cells (a cell cut off midway
                       left no row and is recomputed)
  --force              with --resume: go on although OUT has rows of other options (they are kept)
  --no-figures         skip figures and tables at the end
  --no-tune            no kernel sweep: each GEMM takes the adapter's rule variant
  --retune             time the GEMM variants again (default: the choices cached per adapter, driver
                       and Deno in HF_HOME/quantlab/kernel-choices.json, measured at first use)
  --list               print the matrix (cell index, shard, model, setting) and exit: nothing runs
  --out DIR            where results.jsonl, manifest.json, figures and tables go
                       (default results/runs/<timestamp>)
  --quiet              no progress lines
  -h, --help           this text

Protocol: the text is tokenized once with the tokenizer's special tokens (one BOS at the start),
cut into non-overlapping windows of seqlen tokens (tail dropped), ppl = exp(mean NLL of all
predicted tokens). A failing cell is written as an error row and the matrix goes on.

Exit status: 0 every cell ok; 1 some cell failed (the last line names each, with its stage);
2 refused before any work (bad flags, models, data; nothing written).`;
