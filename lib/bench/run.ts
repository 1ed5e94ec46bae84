// `deno task bench`: run the matrix (lib/bench/matrix.ts) and write OUT/results.jsonl (one row per
// cell × dataset, appended atomically), OUT/manifest.json, and the figures and tables.
// Everything that can be checked is checked before any long work: flags, models (downloaded),
// architectures, tokenizers, datasets long enough for one window, calibration data. A cell that
// fails later becomes an error row and the matrix goes on.

import { type Calibration } from "../data/calibration.ts";
import { getGpu, type Gpu } from "../gpu/device.ts";
import { kernelsUsed } from "../gpu/kernel.ts";
import { perplexity, windowCount } from "../eval/perplexity.ts";
import { appendResults, type ErrorRow, readRows, type ResultRow, type Row } from "../eval/results.ts";
import { loadTokenizer, type TextTokenizer } from "../io/tokenizer.ts";
import { loadModel, openModel } from "../load.ts";
import type { MemoryPlan } from "../model/memory.ts";
import { type Provenance, provenance, writeJsonAtomic, writeTextAtomic } from "../provenance.ts";
import { getMethod } from "../methods/registry.ts";
import { loadedRow, quantizeCell } from "./quantize.ts";
import { meanBitsPerWeight } from "../quant/record.ts";
import { loadText, type TextData } from "../../datasets/datasets.ts";
import { type BenchOptions, calibrationSamples } from "./options.ts";
import { tuneModel } from "./tune.ts";
import { cellKey, matrix, rowOptions, settingLabel, settings, shardCells } from "./matrix.ts";
import { summarize } from "./summary.ts";
import {
  checkIdsInVocab,
  checkMemory,
  checkQuantizedLayers,
  checkSettings,
  checkTensors,
  checkWritable,
  quantizeConfigClashes,
} from "./checks.ts";
import { type ResolvedModel, resolveModel } from "./models.ts";
import { copyBandwidth, decodeSpeed, gemvTimings } from "./speed.ts";
import { rssSampler } from "./timing.ts";
import { writeReport } from "../report/report.ts";

interface Prepared {
  model: ResolvedModel;
  tok: TextTokenizer;
  seqlen: number;
  texts: { data: TextData; ids: number[] }[];
  cal: Calibration | null;
  /** Memory plan per setting label. */
  plans: Map<string, MemoryPlan>;
}

export async function runBench(o: BenchOptions): Promise<Row[]> {
  const log = (s: string) => o.quiet || console.error(s);
  await checkWritable("--out", o.out);
  if (o.export) await checkWritable("--export", o.export);
  const results = `${o.out}/results.jsonl`;
  const existing = await readRows(results).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return [] as Row[];
    throw e;
  });
  if (existing.length && !o.resume) {
    throw new Error(
      `${results} already has ${existing.length} rows: pass --resume to add the missing cells, or another --out`,
    );
  }
  // Rows of other options (another matrix or protocol) would sit beside this run's as if comparable.
  const all = matrix(o);
  const known = new Set(all.flatMap((c) => o.dataset.map((d) => cellKey(c.model, d, c.setting, o))));
  const foreign = existing.filter((r) => r.status === "ok" && !known.has(r.key ?? "")).length;
  if (foreign && !o.force) {
    throw new Error(
      `${results}: ${foreign} of its rows are not cells of this matrix (other options); ` +
        "run with the same options, another --out, or --resume --force to keep them beside the new ones",
    );
  }
  const prepared = await prepare(o, log);

  const gpu = await getGpu();
  log(`adapter: ${gpu.name}${gpu.isFallback ? " (fallback adapter: a CPU, timings are not a GPU's)" : ""}`);
  const prov = await provenance(gpu);
  const copyGbps = o["gemv-reps"] > 0 ? await copyBandwidth(gpu) : null;
  if (copyGbps !== null) log(`copy bandwidth: ${copyGbps.toFixed(2)} GB/s (read + write)`);

  // Resume: finished rows stay; error rows are dropped, their cells retried.
  const done = new Set(existing.filter((r) => r.status === "ok").map((r) => r.key));
  if (existing.some((r) => r.status === "error")) {
    const kept = existing.filter((r) => r.status === "ok");
    await writeTextAtomic(results, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  }
  await writeManifest(o, gpu, prov, prepared, copyGbps);

  const cells = shardCells(all, o.shard);
  if (foreign) {
    log(`note: ${foreign} rows in ${results} are not cells of this matrix (other options); kept as they are`);
  }
  const todo = cells.filter((c) => o.dataset.some((d) => !done.has(cellKey(c.model, d, c.setting, o))));
  log(
    `${cells.length} cells in shard ${o.shard.index}/${o.shard.count}; ${todo.length} to run` +
      (cells.length > todo.length ? ` (${cells.length - todo.length} finished before, kept)` : ""),
  );
  const written: Row[] = [];
  const t0 = performance.now();
  for (const [n, cell] of todo.entries()) {
    const p = prepared.get(cell.model)!;
    const s = cell.setting, label = settingLabel(s), meth = getMethod(s.method);
    const pending = p.texts.filter((t) => !done.has(cellKey(cell.model, t.data.name, s, o)));
    const base = {
      cell: cell.index,
      preset: o.preset ?? null,
      method: s.method,
      bits: s.bits,
      group_size: s.groupSize,
      model: cell.model,
    };
    const fail = async (stage: string, e: unknown, texts = pending) => {
      const msg = (e as Error).message ?? String(e);
      log(`${label} ${cell.model}: ${stage} failed: ${msg}`);
      for (const t of texts) {
        const row: ErrorRow = {
          ...base,
          status: "error",
          key: cellKey(cell.model, t.data.name, s, o),
          dataset: t.data.name,
          stage,
          error: msg,
          adapter: gpu.name,
          date: new Date().toISOString(),
          git_commit: prov.git_commit,
        };
        await appendResults(o.out, [row]);
        written.push(row);
      }
    };
    log(`[${n + 1}/${todo.length}] ${label} on ${cell.model}`);
    const plan = p.plans.get(label)!;
    const streamed = plan.mode === "streamed";
    log(`  memory: ${plan.why}`);
    gpu.pool.budget = plan.budget;
    kernelsUsed.clear();
    const rss = rssSampler();
    let model;
    try {
      gpu.pool.trim();
      model = await loadModel(gpu, p.model.dir, streamed);
    } catch (e) {
      gpu.pool.budget = null;
      rss.stop();
      await fail("load", e);
      continue;
    }
    try {
      gpu.pool.resetPeak();
      let q;
      try {
        q = await quantizeCell(model, s, o, {
          modelDir: p.model.dir,
          cal: p.cal,
          commit: prov.git_commit,
          label,
          log,
          statesOnHost: plan.statesOnHost ?? false,
        });
      } catch (e) {
        await fail("quantize", e);
        continue;
      }
      const quantPeak = gpu.pool.stats().peak, quantHeld = gpu.pool.stats().peakHeld;
      if (!o["no-tune"] && !streamed) {
        // The sweep's kernels are not the cell's: the row lists what quantization and evaluation ran.
        const used = [...kernelsUsed];
        try {
          await tuneModel(model, {
            rows: Math.min(p.seqlen, 128),
            retune: o.retune,
            log: (m) => log(`  ${m}`),
          });
        } catch (e) {
          log(`  kernel choices: sweep failed, the adapter's rules apply: ${(e as Error).message}`);
        }
        kernelsUsed.clear();
        for (const k of used) kernelsUsed.add(k);
      }
      let gemv = null, decode = null;
      if (streamed && (o["gemv-reps"] > 0 || o["decode-tokens"] > 0)) {
        log("  speed not measured: the blocks are streamed (a transfer-bound figure, not the kernels')");
      }
      try {
        if (o["gemv-reps"] > 0 && !streamed) gemv = await gemvTimings(model, o["gemv-reps"]);
        if (o["decode-tokens"] > 0 && !streamed) {
          decode = await decodeSpeed(model, p.texts[0].ids.slice(0, 16), o["decode-tokens"]);
        }
      } catch (e) {
        await fail("speed", e);
        continue;
      }
      const gemvUs = gemv ? gemv.reduce((a, g) => a + g.us, 0) : null;
      const gemvBytes = gemv ? gemv.reduce((a, g) => a + g.gbps * g.us * 1e3, 0) : null;
      const loaded = meth.baseline && model.config.quant ? loadedRow(model.config.quant) : null;
      const methodOptions = loaded?.method_options ?? await q.methodOptions();
      for (const { data, ids } of pending) {
        try {
          gpu.pool.resetPeak();
          let last = 0;
          const r = await perplexity(model, ids, {
            seqlen: p.seqlen,
            maxWindows: o["max-windows"],
            windowsPerPass: windowsPerPass(plan, model.config.hidden, p.seqlen),
            logitRows: plan.logitRows,
            onWindow: (k, total, ppl) => {
              const now = performance.now();
              if (now - last > 5000 || k === total) {
                last = now;
                log(`  ${label} on ${data.name}: window ${k}/${total}, ppl so far ${ppl.toFixed(4)}`);
              }
            },
          });
          const row: ResultRow = {
            ...base,
            status: "ok",
            key: cellKey(cell.model, data.name, s, o),
            method: loaded?.method ?? s.method,
            bits: loaded ? loaded.bits : s.bits,
            group_size: loaded ? loaded.group_size : s.groupSize,
            model_arch: model.config.arch,
            weights_dtype: model.config.dtype,
            dataset: data.name,
            dataset_sha256: data.sha256,
            seqlen: r.seqlen,
            windows: r.windows,
            tokens: r.tokens,
            text_tokens: r.textTokens,
            ppl: r.ppl,
            mean_nll: r.meanNll,
            eval_seconds: r.seconds,
            tokens_per_second: r.tokens / r.seconds,
            model_gpu_bytes: model.bytes(),
            bits_per_weight: q.quant ? meanBitsPerWeight(q.quant.records) : null,
            weight_bytes: model.bytes(),
            quant_seconds: q.quant?.seconds ?? null,
            method_options: methodOptions,
            calibration: meth.calibrated && p.cal
              ? {
                file: p.cal.file,
                sha256: p.cal.sha256,
                nsamples: p.cal.windows.length,
                seqlen: p.cal.windows[0].length,
                seed: p.cal.seed ?? o.seed,
              }
              : null,
            peak_gpu_bytes: Math.max(gpu.pool.stats().peak, quantPeak),
            quant_peak_gpu_bytes: meth.baseline ? null : quantPeak,
            eval_peak_gpu_bytes: gpu.pool.stats().peak,
            peak_gpu_held_bytes: Math.max(gpu.pool.stats().peakHeld, quantHeld),
            memory_mode: plan.mode,
            gpu_bytes_needed: plan.mode === "resident" ? plan.resident : plan.streamed,
            logit_rows: plan.logitRows ?? null,
            states_on_host: plan.statesOnHost ?? false,
            peak_host_rss_bytes: rss.stop(),
            gpu_memory_budget: plan.budget,
            model_revision: p.model.revision,
            dataset_source: data.source,
            decode_tokens_per_second: decode,
            gemv,
            gemv_us: gemvUs,
            gemv_gbps: gemvUs && gemvBytes ? gemvBytes / gemvUs / 1e3 : null,
            copy_gbps: copyGbps,
            seeds: {
              ...(meth.calibrated ? { calibration: p.cal?.seed ?? o.seed } : {}),
              ...meth.seeds,
              ...(data.name.startsWith("c4") ? { c4_eval: 0 } : {}),
            },
            adapter: gpu.name,
            fallback_adapter: gpu.isFallback,
            kernels: [...kernelsUsed].sort(),
            date: new Date().toISOString(),
            deno: prov.deno,
            git_commit: prov.git_commit,
          };
          await appendResults(o.out, [row]);
          written.push(row);
          log(
            `${label} ${cell.model} on ${data.name}: ppl ${
              r.ppl.toFixed(4)
            } (${r.windows} windows of ${r.seqlen})` +
              (decode ? `, decode ${decode.toFixed(1)} tok/s` : ""),
          );
        } catch (e) {
          await fail("eval", e, [{ data, ids }]);
        }
      }
    } finally {
      rss.stop();
      model.release();
      gpu.pool.budget = null; // the GPU is shared with whatever runs next (tests, notebooks)
    }
    const spent = (performance.now() - t0) / 1000, left = todo.length - n - 1;
    if (left) {
      log(
        `  ${n + 1}/${todo.length} cells in ${spent.toFixed(0)} s; ETA ${
          (spent / (n + 1) * left).toFixed(0)
        } s`,
      );
    }
  }
  const summary = summarize(written, cells.length - todo.length);
  const anyOk = existing.some((r) => r.status === "ok") || written.some((r) => r.status === "ok");
  if (!o["no-figures"] && anyOk) {
    const files = await writeReport(o.out);
    log(`figures and tables: ${files.length} files in ${o.out}`);
  } else if (!o["no-figures"]) log("no figures or tables: no cell has a result");
  console.error(summary.line);
  return written;
}

/** Resolve models, tokenizers, texts and calibration before any GPU work; throws on bad input. */
async function prepare(o: BenchOptions, log: (s: string) => void): Promise<Map<string, Prepared>> {
  const texts: TextData[] = [];
  for (const d of o.dataset) texts.push(await loadText(d, { split: "test", log }));
  const calData = o.methods.some((m) => getMethod(m).calibrated)
    ? await loadText(o.calibration!, { split: "train", log }).catch((e) => {
      throw new Error(`--calibration ${o.calibration}: ${(e as Error).message}`);
    })
    : null;
  const out = new Map<string, Prepared>();
  const wanted = settings(o);
  for (const spec of o.model) {
    const model = await resolveModel(spec, log);
    // Every weight file's header (safetensors) or pickle (.bin, whitelisted) is read now, so a
    // broken or hostile checkpoint is refused before any cell starts.
    const { config, ckpt } = await openModel(model.dir);
    for (const w of await quantizeConfigClashes(model.dir, config)) console.error(w);
    checkQuantizedLayers(model.dir, config, ckpt);
    checkTensors(model.dir, config, ckpt);
    checkSettings(spec, config, ckpt, wanted, o);
    const tok = await loadTokenizer(model.dir);
    const seqlen = Math.min(o.seqlen, config.maxPositions);
    if (seqlen < o.seqlen) log(`seqlen capped at ${seqlen} (max_position_embeddings of ${spec})`);
    const prepared = texts.map((data) => {
      const ids = data.evalIds(tok, seqlen);
      checkIdsInVocab(spec, `dataset ${data.name}`, ids, config.vocab);
      if (windowCount(ids.length, seqlen) < 1) {
        throw new Error(
          `dataset ${data.name}: ${ids.length} tokens with ${spec}'s tokenizer, fewer than one window of ${seqlen}`,
        );
      }
      return { data, ids };
    });
    let cal: Calibration | null = null;
    if (calData) {
      const cs = Math.min(o["calib-seqlen"], config.maxPositions);
      const nsamples = calibrationSamples(o);
      const windows = calData.calibration(tok, { nsamples, seqlen: cs, seed: o.seed });
      windows.forEach((w, k) =>
        checkIdsInVocab(spec, `calibration window ${k} of ${calData.name}`, w, config.vocab)
      );
      const tokens = calData.tokenCount?.(tok) ?? Infinity;
      for (const m of o.methods) getMethod(m).checkCalibration?.(tokens, windows.length, cs, calData.name);
      const seed = calData.calibrationSeed ?? o.seed;
      cal = { file: calData.source, sha256: calData.sha256, windows, tokens, seed };
      log(
        `calibration: ${windows.length} windows of ${cs} tokens from ${calData.name} (seed ${seed}` +
          `${calData.calibrationDescription ? `; ${calData.calibrationDescription}` : ""})`,
      );
    }
    const calShape = cal ? { n: cal.windows.length, seq: cal.windows[0].length } : null;
    const plans = new Map(
      wanted.map((s) => [settingLabel(s), checkMemory(spec, config, s, o, seqlen, calShape)]),
    );
    out.set(spec, { model, tok, seqlen, texts: prepared, cal, plans });
  }
  return out;
}

async function writeManifest(
  o: BenchOptions,
  gpu: Gpu,
  prov: Provenance,
  prepared: Map<string, Prepared>,
  copyGbps: number | null,
): Promise<void> {
  const path = `${o.out}/manifest.json`;
  const old = await Deno.readTextFile(path).then(JSON.parse, () => null);
  const limits = gpu.device.limits;
  const invocation = {
    started: prov.date,
    shard: `${o.shard.index}/${o.shard.count}`,
    resume: o.resume,
    quantlab_commit: prov.git_commit,
    git_dirty: prov.git_dirty,
    deno: prov.deno,
    os: prov.os,
    adapter: {
      name: gpu.name,
      fallback: gpu.isFallback,
      shader_f16: gpu.hasF16,
      timestamps: gpu.hasTimestamps,
      limits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      },
      copy_gbps: copyGbps,
    },
  };
  const first = [...prepared.values()][0];
  await writeJsonAtomic(path, {
    preset: o.preset ?? null,
    options: rowOptions(o),
    matrix: {
      models: o.model,
      datasets: o.dataset,
      methods: o.methods,
      bits: o.bits ?? null,
      group_sizes: o["group-size"] ?? null,
      double_quant: o["double-quant"],
    },
    models: [...prepared.entries()].map(([spec, p]) => ({
      spec,
      dir: p.model.dir,
      revision: p.model.revision,
      files: p.model.files,
    })),
    datasets: first.texts.map((t) => ({ name: t.data.name, source: t.data.source, sha256: t.data.sha256 })),
    calibration: first.cal ? { source: first.cal.file, sha256: first.cal.sha256 } : null,
    invocations: [...(old?.invocations ?? []), invocation],
  });
}

/** Streamed evaluation: windows per pass through the blocks, as many as the budget's slack holds (≤ 8). */
function windowsPerPass(plan: MemoryPlan, hidden: number, seqlen: number): number {
  if (plan.mode !== "streamed" || plan.budget === null) return 1;
  const slack = plan.budget - plan.streamed;
  return Math.max(1, Math.min(8, 1 + Math.floor(slack / (seqlen * hidden * 4))));
}
