// Figures and tables from rows alone: the paper's number beside ours for a preset that has it,
// the Pareto front, error rows listed, and PNGs whose text is really drawn (resvg draws none
// without a font: the render with the shipped fonts must differ from a no-font render).

import assert from "node:assert";
import { Resvg } from "@resvg/resvg-js";
import { ResultRow, type Row } from "../../lib/eval/results.ts";
import { data, pareto } from "../../lib/report/figures.ts";
import { toPng, toSvg } from "../../lib/report/render.ts";
import { tablesMarkdown } from "../../lib/report/tables.ts";
import { decodePng, inked } from "../png.ts";

function row(
  method: string,
  bits: number | null,
  group: number | null,
  ppl: number,
  bpw: number | null,
): ResultRow {
  return ResultRow.parse({
    method,
    bits,
    group_size: group,
    model: "facebook/opt-125m",
    model_arch: "OPTForCausalLM",
    weights_dtype: "float16",
    dataset: "wikitext2",
    dataset_sha256: "0".repeat(64),
    seqlen: 2048,
    windows: 140,
    tokens: 286720,
    text_tokens: 287645,
    ppl,
    mean_nll: Math.log(ppl),
    eval_seconds: 10,
    tokens_per_second: 28672,
    model_gpu_bytes: 500e6,
    bits_per_weight: bpw,
    weight_bytes: bpw ? 150e6 : 500e6,
    peak_gpu_bytes: 600e6,
    adapter: "test",
    fallback_adapter: false,
    date: "2026-11-27",
    deno: "2.9.6",
    git_commit: null,
  });
}

const ROWS = [
  row("fp", null, null, 27.66, null),
  row("rtn", 4, -1, 37.3, 4.03),
  row("gptq", 4, -1, 31.2, 4.03),
  row("gptq", 3, -1, 53.1, 3.03),
];

Deno.test("the paper-gptq table prints GPTQ Table 3 beside ours; errors are listed", () => {
  const err: Row = {
    status: "error",
    key: "k",
    cell: 4,
    preset: "paper-gptq",
    method: "awq",
    bits: 3,
    group_size: 128,
    model: "facebook/opt-125m",
    dataset: "wikitext2",
    stage: "quantize",
    error: "out of memory | really",
    adapter: "test",
    date: "x",
    git_commit: null,
  };
  const md = tablesMarkdown([...ROWS, err], "paper-gptq", "test");
  assert.match(md, /\| method \| FP \| W4 per-channel \| W3 per-channel \|/);
  assert.match(md, /\| fp \| 27\.66 \(paper 27\.65\) \|/);
  assert.match(md, /\| gptq \| {2}\| 31\.20 \(paper 31\.12\) \| 53\.10 \(paper 53\.85\) \|/);
  assert.match(md, /\| rtn \| {2}\| 37\.30 \|/, "no paper number for RTN (not re-verified in methods.md)");
  assert.match(md, /OPT-175B is not on the Hub/, "the preset's notes");
  assert.match(
    md,
    /\| facebook\/opt-125m \| wikitext2 \| awq W3 g128 \| quantize \| out of memory \\| really \|/,
  );
});

Deno.test("the Pareto front: no other point has fewer bits per weight and a lower ppl", () => {
  const front = data(ROWS).filter((d) => d.front).map((d) => d.setting);
  assert.deepStrictEqual(front.sort(), ["fp", "gptq W3 per-channel", "gptq W4 per-channel"].sort());
});

Deno.test("PNG renders carry text drawn with the shipped fonts", async () => {
  const svg = await toSvg(pareto(ROWS));
  assert.match(svg, /Perplexity against bits per weight/);
  const withFonts = await decodePng(toPng(svg, 1));
  const noFonts = await decodePng(
    new Resvg(svg, { background: "white", font: { loadSystemFonts: false } }).render().asPng(),
  );
  assert.deepStrictEqual([withFonts.width, withFonts.height], [noFonts.width, noFonts.height]);
  assert.ok(inked(withFonts) > inked(noFonts) + 500, `${inked(withFonts)} vs ${inked(noFonts)} inked pixels`);
  // Deterministic: the same bytes twice.
  assert.deepStrictEqual(toPng(svg, 1), toPng(svg, 1));
});
