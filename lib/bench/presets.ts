// Presets of `deno task bench`: each paper's headline table as a matrix (models, methods, bits,
// group sizes, data and protocol, methods.md §3), and `smoke`, the small default. A preset only
// supplies defaults: a --config file and command-line flags override any of them.

export interface Preset {
  description: string;
  /** Flag values, as the command line would give them. */
  flags: Record<string, string | boolean | string[]>;
  /** What differs from the paper's own protocol, said in the table's notes. */
  notes?: string[];
}

const OPT = (sizes: string[]) => sizes.map((s) => `facebook/opt-${s}`);
const LLAMA2 = ["meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf"];

export const PRESETS: Record<string, Preset> = {
  smoke: {
    description:
      "every method at 4 and 3 bits on facebook/opt-125m, WikiText-2, a few windows: minutes on a GPU",
    flags: {
      model: ["facebook/opt-125m"],
      dataset: ["wikitext2"],
      calibration: "wikitext2",
      methods: "fp,rtn,gptq,awq,hqq,autoround,nf4,bnb-int8",
      bits: "4,3",
      "group-size": "128",
      seqlen: "512",
      "max-windows": "8",
      nsamples: "32",
      "calib-seqlen": "512",
      iters: "20",
    },
    notes: [
      "smoke: a few evaluation windows, a small calibration set and 20 AutoRound iterations: a check that everything runs end to end, not the papers' protocol",
    ],
  },
  "paper-gptq": {
    description: "GPTQ Table 3: OPT 125M–66B, FP16/RTN/GPTQ at 4 and 3 bits per-channel, WikiText-2 at 2048",
    flags: {
      model: OPT(["125m", "350m", "1.3b", "2.7b", "6.7b", "13b", "30b", "66b"]),
      dataset: ["wikitext2"],
      calibration: "c4",
      methods: "fp,rtn,gptq",
      bits: "4,3",
      "group-size": "-1",
      seqlen: "2048",
      nsamples: "128",
      "calib-seqlen": "2048",
      // IST-DASLab's opt.py collects all Hessians of a block in one FP pass.
      "no-true-sequential": true,
    },
    notes: [
      "OPT-175B is not on the Hub; weights are evaluated in float32 (the paper: FP16)",
      "GPTQ as IST-DASLab's opt.py: every Hessian of a block from one pass (--no-true-sequential)",
    ],
  },
  "paper-awq": {
    description:
      "AWQ Table 4: Llama-2 7B/13B/70B, FP16/RTN/GPTQ/AWQ at 4 and 3 bits g128, WikiText-2 at 2048",
    flags: {
      model: LLAMA2,
      dataset: ["wikitext2"],
      calibration: "pile-val",
      methods: "fp,rtn,gptq,awq",
      bits: "4,3",
      "group-size": "128",
      seqlen: "2048",
      nsamples: "128",
      "calib-seqlen": "512",
      // Table 4 comes from llm-awq: s = s_x^α, no duo scaling; its RTN is pseudo_quantize_tensor.
      "no-duo-scaling": true,
      "rtn-grid": "minmax",
    },
    notes: [
      "calibration: AWQ's pile-val (128 documents of ≤ 512 tokens, shuffled with seed 42, cut into 512-token windows) for every method (GPTQ's own: C4 at 2048)",
      "GPTQ here without reordering (the paper's GPTQ-R row is act-order)",
      "AWQ's scale search as llm-awq's (s = s_x^α, --no-duo-scaling); RTN on AWQ's min/max grid (--rtn-grid minmax)",
    ],
  },
  "paper-awq-gptq": {
    description: "AWQ Table 9: OPT 1.3B–30B, GPTQ and AWQ+GPTQ at INT2 g64, WikiText-2 at 2048",
    flags: {
      model: OPT(["1.3b", "2.7b", "6.7b", "13b", "30b"]),
      dataset: ["wikitext2"],
      calibration: "pile-val",
      methods: "fp,gptq,awq+gptq",
      bits: "2",
      "group-size": "64",
      seqlen: "2048",
      nsamples: "128",
      "calib-seqlen": "512",
      // llm-awq's scale search (s = s_x^α), as in Table 4.
      "no-duo-scaling": true,
    },
    notes: [
      "a matrix of its own (OPT, INT2 g64) rather than rows of paper-awq (Llama-2, g128 at 4 and 3 bits)",
      "calibration: AWQ's pile-val (128 documents of ≤ 512 tokens, seed 42) for both steps (GPTQ's own: C4 at 2048)",
      "awq+gptq: llm-awq's scale search and clipping applied to the FP weights, then GPTQ (true-sequential, no reordering)",
    ],
  },
  "paper-bnb": {
    description:
      "LLM.int8() Table 1's setting: int8 with outlier decomposition beside NF4 and FP4 (+DQ), C4 and WikiText-2",
    flags: {
      model: OPT(["125m", "1.3b", "2.7b", "6.7b", "13b"]),
      dataset: ["c4", "wikitext2"],
      methods: "fp,bnb-int8,nf4,fp4",
      "group-size": "64",
      "double-quant": "on,off",
      seqlen: "2048",
    },
    notes: [
      "LLM.int8()'s Table 1 models are fairseq dense LMs, not on the Hub: OPT of the same sizes stands in, so its numbers are not shown beside ours",
      "QLoRA's Table 2 (mean Pile-CC perplexity) is not regenerated: the Pile is no longer on the Hub; NF4/FP4 here are on C4 and WikiText-2",
      "LLM.int8's activations are cast to fp16 before their int8 quantization, as bitsandbytes' MatMul8bitLt does",
    ],
  },
  "paper-hqq": {
    description:
      "HQQ: Llama-2 7B/13B/70B at 4, 3 and 2 bits with HQQ's published recipes, WikiText-2 at 2048",
    flags: {
      model: LLAMA2,
      dataset: ["wikitext2"],
      methods: "fp,rtn,hqq",
      bits: "4,3,2",
      // RTN at g64; HQQ by its recipes: W4/W3 g64, W2 g16 with 8-bit g128 scales, axis 0, 8-bit zeros.
      "group-size": "64",
      "hqq-recipes": true,
      seqlen: "2048",
    },
    notes: [
      "HQQ's published ppl uses a sliding window of 1024 with stride 512, not comparable with 2048 non-overlapping windows (methods.md §2)",
      "HQQ cells by its published recipes (--hqq-recipes: hqq @b60baf6's Llama-2 benchmark); RTN at g64 beside them",
    ],
  },
  "paper-autoround": {
    description:
      "AutoRound: Llama-2 7B/13B/70B and Mistral-7B, RTN/GPTQ/AWQ/HQQ/AutoRound W4 and W2 g128, 11-task 0-shot accuracy + wikitext2 / ptb-new / c4-new",
    flags: {
      model: [...LLAMA2, "mistralai/Mistral-7B-v0.1"],
      dataset: ["wikitext2", "ptb-new", "c4-new"],
      // The paper's 11-task 0-shot average (methods.md §3), scored as lm-eval does.
      tasks:
        "mmlu,lambada_openai,hellaswag,winogrande,piqa,truthfulqa_mc1,openbookqa,boolq,rte,arc_easy,arc_challenge",
      calibration: "pile-10k",
      methods: "fp,rtn,gptq,awq,hqq,autoround",
      bits: "4,2",
      "group-size": "128",
      seqlen: "2048",
      // The paper: 512 samples of 2048 tokens from pile-10k, 200 iterations, batch 8.
      nsamples: "512",
      "calib-seqlen": "2048",
      // The paper's GPTQ baseline: act-order, true-sequential, static groups.
      "act-order": true,
      "static-groups": true,
    },
    notes: [
      "GPTQ baseline with act-order and static groups, true-sequential, as the AutoRound paper ran it",
      "accuracy: the paper's 11 tasks 0-shot (mmlu, lambada_openai, hellaswag, winogrande, piqa, truthfulqa_mc1, openbookqa, boolq, rte, arc_easy, arc_challenge), lm-eval 0.4.13's requests and metrics (the paper used lm-eval commit 008fc2a), fake-quant weights; its ppl columns GPTQ-style wikitext2/ptb-new/c4-new at 2048",
      "calibration: auto-round's pile-10k (NeelNanda/pile-10k, seed 42, the first 2048 tokens of documents of ≥ 2048) × 512 samples, as the paper, for every method",
    ],
  },
};

/**
 * Published perplexities to print beside ours: preset → "model|dataset|method|bits|group" → ppl.
 * bits and group are "" for FP. From methods.md §3 (GPTQ Table 3; AWQ Table 4) and AWQ Table 9.
 */
export const PAPER_PPL: Record<string, Record<string, number>> = {
  "paper-gptq": table(
    OPT(["125m", "350m", "1.3b", "2.7b", "6.7b", "13b", "30b", "66b"]),
    "wikitext2",
    {
      "fp||": [27.65, 22.00, 14.63, 12.47, 10.86, 10.13, 9.56, 9.34],
      "gptq|4|-1": [31.12, 24.24, 15.47, 12.87, 11.39, 10.31, 9.63, 9.55],
      "gptq|3|-1": [53.85, 33.79, 20.97, 16.88, 14.86, 11.61, 10.27, 14.16],
    },
  ),
  "paper-awq": table(LLAMA2, "wikitext2", {
    "fp||": [5.47, 4.88, 3.32],
    "rtn|3|128": [6.66, 5.52, 3.98],
    "gptq|3|128": [6.43, 5.48, 3.88],
    "awq|3|128": [6.24, 5.32, 3.74],
    "rtn|4|128": [5.73, 4.98, 3.46],
    "gptq|4|128": [5.69, 4.98, 3.42],
    "awq|4|128": [5.60, 4.97, 3.41],
  }),
  "paper-awq-gptq": table(OPT(["1.3b", "2.7b", "6.7b", "13b", "30b"]), "wikitext2", {
    "gptq|2|64": [46.67, 28.15, 16.65, 16.74, 11.75],
    "awq+gptq|2|64": [35.71, 25.70, 15.71, 13.25, 11.38],
  }),
};

function table(models: string[], dataset: string, rows: Record<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [setting, values] of Object.entries(rows)) {
    values.forEach((v, i) => (out[`${models[i]}|${dataset}|${setting}`] = v));
  }
  return out;
}

export const paperKey = (
  model: string,
  dataset: string,
  method: string,
  bits: number | null,
  group: number | null,
) => `${model}|${dataset}|${method}|${bits ?? ""}|${group ?? ""}`;
