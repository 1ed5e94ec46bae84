// `deno task bench`: run the matrix (lib/bench/matrix.ts) and write OUT/results.jsonl (one row per
// cell × dataset, appended atomically), OUT/manifest.json, and the figures and tables.
// Everything that can be checked is checked before any long work: flags, models (downloaded),
// architectures, tokenizers, datasets long enough for one window, calibration data. A cell that
// fails later becomes an error row and the matrix goes on.

import { getGpu } from "../gpu/device.ts";
import { kernelsUsed } from "../gpu/kernel.ts";
import { perplexity } from "../eval/perplexity.ts";
import { appendResults, type ErrorRow, readRows, type ResultRow, type Row } from "../eval/results.ts";
import { loadModel } from "../load.ts";
import { provenance, writeTextAtomic } from "../provenance.ts";
import { getMethod } from "../methods/registry.ts";
import { loadedRow, quantizeCell } from "./quantize.ts";
import { meanBitsPerWeight } from "../quant/record.ts";
import type { BenchOptions } from "./options.ts";
import { tuneModel } from "./tune.ts";
import { type Cell, cellKey, matrix, settingLabel, shardCells } from "./matrix.ts";
import { summarize } from "./summary.ts";
import { checkWritable } from "./checks.ts";
import { copyBandwidth, decodeSpeed, gemvTimings } from "./speed.ts";
import { rssSampler } from "./timing.ts";
import { writeReport } from "../report/report.ts";
import { prepare, windowsPerPass, writeManifest } from "./prepare.ts";
import { entryTaskNames, type RowCommon, runEntry, taskKeyName } from "./tasks.ts";

/** Every row key of a cell: one per dataset, one per task (mmlu: each subject and the group). */
function cellKeys(c: Cell, o: BenchOptions): string[] {
  const tasks = (o.tasks ?? []).flatMap((e) => entryTaskNames(e.name));
  return [
    ...o.dataset.map((d) => cellKey(c.model, d, c.setting, o)),
    ...tasks.map((t) => cellKey(c.model, taskKeyName(t, o), c.setting, o)),
  ];
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
  const known = new Set(all.flatMap((c) => cellKeys(c, o)));
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
  const todo = cells.filter((c) => cellKeys(c, o).some((k) => !done.has(k)));
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
    const taskKey = (t: string) => cellKey(cell.model, taskKeyName(t, o), s, o);
    const pendingTasks = p.tasks.filter((mt) =>
      entryTaskNames(mt.entry.name).some((t) => !done.has(taskKey(t)))
    );
    /** What a failure before evaluation leaves an error row for: every pending text and task. */
    const allPending = [
      ...pending.map((t) => ({ key: cellKey(cell.model, t.data.name, s, o), dataset: t.data.name })),
      ...pendingTasks.flatMap((mt) =>
        entryTaskNames(mt.entry.name).map((t) => ({ key: taskKey(t), dataset: `task:${t}` }))
      ),
    ];
    const base = {
      cell: cell.index,
      preset: o.preset ?? null,
      method: s.method,
      bits: s.bits,
      group_size: s.groupSize,
      model: cell.model,
    };
    const fail = async (stage: string, e: unknown, what = allPending) => {
      const msg = (e as Error).message ?? String(e);
      log(`${label} ${cell.model}: ${stage} failed: ${msg}`);
      for (const t of what) {
        const row: ErrorRow = {
          ...base,
          status: "error",
          key: t.key,
          dataset: t.dataset,
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
          const prompt = p.texts[0]?.ids ?? p.tasks[0].prepared[0].encoded[0][0].context;
          decode = await decodeSpeed(model, prompt.slice(0, 16), o["decode-tokens"]);
        }
      } catch (e) {
        await fail("speed", e);
        continue;
      }
      const gemvUs = gemv ? gemv.reduce((a, g) => a + g.us, 0) : null;
      const gemvBytes = gemv ? gemv.reduce((a, g) => a + g.gbps * g.us * 1e3, 0) : null;
      const loaded = meth.baseline && model.config.quant ? loadedRow(model.config.quant) : null;
      const methodOptions = loaded?.method_options ?? await q.methodOptions();
      /** The fields every row of the cell shares (perplexity and task rows). */
      const common: RowCommon = {
        ...base,
        status: "ok",
        method: loaded?.method ?? s.method,
        bits: loaded ? loaded.bits : s.bits,
        group_size: loaded ? loaded.group_size : s.groupSize,
        model_arch: model.config.arch,
        weights_dtype: model.config.dtype,
        bits_per_weight: q.quant ? meanBitsPerWeight(q.quant.records) : null,
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
        model_revision: p.model.revision,
        seeds: { ...(meth.calibrated ? { calibration: p.cal?.seed ?? o.seed } : {}), ...meth.seeds },
        adapter: gpu.name,
        fallback_adapter: gpu.isFallback,
        deno: prov.deno,
        git_commit: prov.git_commit,
      };
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
            ...common,
            key: cellKey(cell.model, data.name, s, o),
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
            weight_bytes: model.bytes(),
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
            seeds: { ...common.seeds, ...(data.name.startsWith("c4") ? { c4_eval: 0 } : {}) },
            kernels: [...kernelsUsed].sort(),
            date: new Date().toISOString(),
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
          await fail("eval", e, [{ key: cellKey(cell.model, data.name, s, o), dataset: data.name }]);
        }
      }
      for (const mt of pendingTasks) {
        try {
          const rows = await runEntry(model, mt, common, taskKey, o, log);
          const now = new Date().toISOString(), kernels = [...kernelsUsed].sort();
          const fresh = rows.filter((r) => !done.has(r.key)).map((r) => ({ ...r, date: now, kernels }));
          await appendResults(o.out, fresh);
          written.push(...fresh);
        } catch (e) {
          const what = entryTaskNames(mt.entry.name).filter((t) => !done.has(taskKey(t)));
          await fail("task", e, what.map((t) => ({ key: taskKey(t), dataset: `task:${t}` })));
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
