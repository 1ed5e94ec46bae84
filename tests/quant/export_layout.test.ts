// Our exports have the layout of the file each peer writes for the same format (../shared/fixtures/
// peers, written by AutoGPTQ, AutoAWQ, auto-round, bitsandbytes + transformers, hqq): the same
// tensor names, dtypes and shapes, the same quantization_config keys with the same JSON types,
// and the same keys in bitsandbytes' per-layer quant-state JSON — apart from the differences
// listed here, each with its reason (README, "Exports").

import assert from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { Checkpoint } from "../../lib/io/checkpoint.ts";
import { loadModel } from "../../lib/load.ts";
import { quantizeBnb4 } from "../../lib/quant/bnb.ts";
import { exportAwq } from "../../lib/quant/export_awq.ts";
import { exportBnb } from "../../lib/quant/export_bnb.ts";
import { exportAutoRound, exportGptq } from "../../lib/quant/export_gptq.ts";
import { exportHqq } from "../../lib/quant/export_hqq.ts";
import { quantizeHqq } from "../../lib/quant/hqq.ts";
import { quantizeInt8 } from "../../lib/quant/llm_int8.ts";
import type { QuantRecord } from "../../lib/quant/record.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`, PEERS = `${FIXTURES}/peers`;

interface Case {
  folder: string;
  records: () => Promise<QuantRecord[]>;
  write: (out: string, r: QuantRecord[]) => Promise<void>;
  /** Tensors whose dtype may differ from the peer's, and why. */
  dtypeDiffers?: [RegExp, string];
  /** quantization_config keys only we write (documented additions) and only the peer writes. */
  oursOnly?: string[];
  peerOnly?: string[];
}

async function quantized<T>(f: (m: Awaited<ReturnType<typeof loadModel>>) => Promise<T>): Promise<T> {
  const m = await loadModel(gpu, LLAMA);
  try {
    return await f(m);
  } finally {
    m.release();
  }
}

const rtn = (sym: boolean, range: "include-zero" | "minmax") => () =>
  quantized(async (m) => (await quantizeRtn(m, { bits: 4, groupSize: 128, sym, range })).records);
const bnb4 = (type: "nf4" | "fp4", doubleQuant: boolean) => () =>
  quantized(async (m) => (await quantizeBnb4(m, { type, blocksize: 64, doubleQuant })).records);

const CASES: Case[] = [
  {
    folder: "gptq-w4g128",
    records: rtn(false, "include-zero"),
    write: (out, r) =>
      exportGptq(LLAMA, out, r, {
        bits: 4,
        groupSize: 128,
        sym: false,
        actOrder: false,
        staticGroups: false,
        percdamp: 0.01,
        trueSequential: true,
      }),
  },
  {
    folder: "awq-w4g128",
    records: rtn(false, "minmax"),
    write: (out, r) => exportAwq(LLAMA, out, r, new Map()),
  },
  {
    folder: "autoround-w4g128",
    records: rtn(true, "include-zero"),
    write: (out, r) =>
      exportAutoRound(LLAMA, out, r, {
        bits: 4,
        groupSize: 128,
        sym: true,
        iters: 200,
        lr: 0.005,
        nsamples: 128,
        seqlen: 2048,
      }),
    // auto-round on CPU casts the whole model to bf16 first (README-peer-checkpoints.md); we copy
    // the unquantized tensors in the source's own dtype (fp16 here, as its config.json says).
    dtypeDiffers: [/(norm|embed_tokens|lm_head)\.weight$/, "auto-round's CPU bf16 cast"],
    // Our tuning settings are recorded; auto-round's version and its activation-quant settings are not ours.
    oursOnly: ["iters", "lr", "minmax_lr", "nsamples", "seqlen", "batch_size"],
    peerOnly: ["autoround_version", "static_attention_granularity", "static_kv_granularity"],
  },
  {
    folder: "bnb-nf4-dq",
    records: bnb4("nf4", true),
    write: (out, r) => exportBnb(LLAMA, out, r, null),
  },
  { folder: "bnb-fp4", records: bnb4("fp4", false), write: (out, r) => exportBnb(LLAMA, out, r, null) },
  {
    folder: "bnb-int8",
    records: () => quantized(async (m) => (await quantizeInt8(m)).records),
    write: (out, r) => exportBnb(LLAMA, out, r, { threshold: 6 }),
  },
  {
    folder: "hqq-w4g64",
    records: () =>
      quantized(async (m) => (await quantizeHqq(m, { bits: 4, groupSize: 64, axis: 1 })).records),
    write: (out, r) => exportHqq(LLAMA, out, r, { axis: 1 }),
    // Our solver runs in f32: scale and zero stay f32 (compute_dtype torch.float32 in the meta record;
    // hqq casts them to its compute dtype when it loads them). hqq's float16 run stores float16.
    dtypeDiffers: [/\.(scale|zero)$/, "compute dtype float32"],
    // hqq's writer adds no quantization_config; ours is transformers' HqqConfig.to_dict() plus our settings.
    oursOnly: [
      "quant_method",
      "quant_config",
      "skip_modules",
      "nbits",
      "group_size",
      "axis",
      "packing",
      "compute_dtype",
      "view_as_float",
    ],
  },
];

const jsonType = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

for (const c of CASES) {
  Deno.test(`export layout = the peer-written ${c.folder}: tensor names, dtypes, shapes, config keys and types`, async () => {
    const out = `${await Deno.makeTempDir()}/${c.folder}`;
    await c.write(out, await c.records());
    const ours = await Checkpoint.open(out), peer = await Checkpoint.open(`${PEERS}/${c.folder}`);
    assert.deepStrictEqual(ours.names().sort(), peer.names().sort(), `${c.folder}: tensor names`);
    for (const n of peer.names()) {
      const a = ours.info(n), b = peer.info(n);
      assert.deepStrictEqual(a.shape, b.shape, `${c.folder}: ${n} shape`);
      if (c.dtypeDiffers?.[0].test(n)) continue;
      assert.strictEqual(a.dtype, b.dtype, `${c.folder}: ${n} dtype`);
      if (n.includes(".quant_state.bitsandbytes__")) {
        const state = async (k: Checkpoint) => JSON.parse(new TextDecoder().decode(await k.readBytes(n)));
        assert.deepStrictEqual(Object.keys(await state(ours)), Object.keys(await state(peer)), `${n} keys`);
      }
    }
    const qc = async (dir: string) =>
      JSON.parse(await Deno.readTextFile(`${dir}/config.json`)).quantization_config ?? {};
    const qa = await qc(out), qb = await qc(`${PEERS}/${c.folder}`);
    const onlyA = Object.keys(qa).filter((k) => !(k in qb)).sort();
    const onlyB = Object.keys(qb).filter((k) => !(k in qa)).sort();
    assert.deepStrictEqual(
      onlyA,
      [...(c.oursOnly ?? [])].sort(),
      `${c.folder}: quantization_config keys only ours has`,
    );
    assert.deepStrictEqual(onlyB, [...(c.peerOnly ?? [])].sort(), `${c.folder}: keys only the peer's has`);
    for (const k of Object.keys(qb)) {
      if (k in qa) {
        assert.strictEqual(jsonType(qa[k]), jsonType(qb[k]), `${c.folder}: quantization_config.${k} type`);
      }
    }
    // JSON has one number type: a float field must be written as a float literal where the peer's is.
    const text = (s: string) => s.replace(/\s/g, "");
    for (const k of Object.keys(qb)) {
      if (typeof qb[k] === "number" && k in qa) {
        const lit = (dir: string) =>
          new RegExp(`"${k}":(-?[\\d.eE+-]+)`).exec(text(Deno.readTextFileSync(`${dir}/config.json`)))![1];
        assert.strictEqual(
          lit(out).includes("."),
          lit(`${PEERS}/${c.folder}`).includes("."),
          `${c.folder}: ${k} int/float literal`,
        );
      }
    }
    await Deno.remove(out, { recursive: true });
  });
}
