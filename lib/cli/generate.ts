// `deno task generate --model DIR --prompt TEXT [--method rtn --bits 4 --group-size 128]`:
// print a continuation, FP first and then the quantized model when a method is given, so the two
// can be compared by eye; decode speed is reported on stderr.

import { parseArgs } from "node:util";
import { z } from "zod";
import { getGpu } from "../gpu/device.ts";
import { loadTokenizer } from "../io/tokenizer.ts";
import { generate } from "../model/generate.ts";
import { loadModel } from "../load.ts";
import { quantizeRtn } from "../quant/rtn.ts";

const GenOptions = z.object({
  model: z.string({ message: "--model is required" }).min(1),
  prompt: z.string({ message: "--prompt is required" }),
  method: z.enum(["fp", "rtn"]).default("fp"),
  bits: z.coerce.number().int().default(4),
  "group-size": z.coerce.number().int().default(128),
  "max-new-tokens": z.coerce.number().int().min(1).default(64),
  temperature: z.coerce.number().min(0).default(0),
  "top-p": z.coerce.number().gt(0).max(1).default(1),
  seed: z.coerce.number().int().nonnegative().default(0),
  stream: z.boolean().default(false),
}).strict();

const HELP = `deno task generate — continue a prompt with a model (and its quantized version)

  --model DIR             Hugging Face model directory
  --prompt TEXT           the prompt (encoded with the tokenizer's special tokens)
  --method fp|rtn         quantize before generating (default fp); with rtn, FP runs first for comparison
  --bits N                bits for the method (default 4)
  --group-size N          group size for the method (default 128; -1 = per-channel)
  --max-new-tokens N      default 64 (bounded by the model's positions)
  --temperature T         0 = greedy (default)
  --top-p P               nucleus sampling mass (default 1)
  --seed N                sampling seed (default 0)
  --stream                keep the decoder blocks in host memory and stream them through the GPU a
                          block at a time (a model larger than the GPU; every token reads every block)`;

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      prompt: { type: "string" },
      method: { type: "string" },
      bits: { type: "string" },
      "group-size": { type: "string" },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      seed: { type: "string" },
      stream: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return console.log(HELP);
  const { help: _, ...rest } = values;
  const r = GenOptions.safeParse(rest);
  if (!r.success) {
    throw new Error(r.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("\n"));
  }
  const o = r.data;
  const gpu = await getGpu();
  const tok = await loadTokenizer(o.model);
  const prompt = tok.encode(o.prompt);
  const methods = o.method === "fp" ? ["fp"] : ["fp", o.method];
  for (const m of methods) {
    const model = await loadModel(gpu, o.model, o.stream);
    let label = "fp";
    if (m === "rtn") {
      await quantizeRtn(model, { bits: o.bits, groupSize: o["group-size"] });
      label = `rtn W${o.bits} g${o["group-size"]}`;
    }
    const maxNew = Math.min(o["max-new-tokens"], model.config.maxPositions - prompt.length);
    const g = await generate(model, prompt, {
      maxNewTokens: maxNew,
      temperature: o.temperature,
      topP: o["top-p"],
      seed: o.seed,
    });
    console.log(`--- ${label}\n${tok.decode(g.ids)}`);
    console.error(
      `${label}: prefill ${prompt.length} tokens in ${g.prefillMs.toFixed(0)} ms, ` +
        `decode ${g.decodeTokensPerSecond.toFixed(1)} tokens/s on ${gpu.name}`,
    );
    model.release();
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
