// What a run needs before any GPU work, resolved and checked (models downloaded, architectures,
// tokenizers, datasets long enough for one window, calibration windows, task rows and their
// encoded requests, memory plans), and the run's manifest.

import { type Calibration } from "../data/calibration.ts";
import type { Gpu } from "../gpu/device.ts";
import { windowCount } from "../eval/perplexity.ts";
import { loadTokenizer, type TextTokenizer } from "../io/tokenizer.ts";
import { openModel } from "../load.ts";
import type { MemoryPlan } from "../model/memory.ts";
import { type Provenance, writeJsonAtomic } from "../provenance.ts";
import { getMethod } from "../methods/registry.ts";
import { loadText, type TextData } from "../../datasets/datasets.ts";
import { type BenchOptions, calibrationSamples } from "./options.ts";
import { rowOptions, settingLabel, settings } from "./matrix.ts";
import {
  checkIdsInVocab,
  checkMemory,
  checkQuantizedLayers,
  checkSettings,
  checkTensors,
  quantizeConfigClashes,
} from "./checks.ts";
import { type ResolvedModel, resolveModel } from "./models.ts";
import { encodeTasks, loadTasks, type ModelTasks } from "./tasks.ts";

export interface Prepared {
  model: ResolvedModel;
  tok: TextTokenizer;
  seqlen: number;
  texts: { data: TextData; ids: number[] }[];
  cal: Calibration | null;
  /** Memory plan per setting label. */
  plans: Map<string, MemoryPlan>;
  /** --tasks: each entry's requests encoded with this model's tokenizer. */
  tasks: ModelTasks[];
}

/** Resolve models, tokenizers, texts and calibration before any GPU work; throws on bad input. */
export async function prepare(o: BenchOptions, log: (s: string) => void): Promise<Map<string, Prepared>> {
  const texts: TextData[] = [];
  for (const d of o.dataset) texts.push(await loadText(d, { split: "test", log }));
  const taskData = await loadTasks(o, log);
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
    const streamed = [...plans].filter(([, p]) => p.mode === "streamed").map(([l]) => l);
    if (o.tasks && streamed.length) {
      throw new Error(
        `--tasks: ${spec} is streamed under --gpu-memory for ${streamed.join(", ")}; task evaluation of a ` +
          "streamed model is not supported yet (raise --gpu-memory, or evaluate perplexity only)",
      );
    }
    const tasks = encodeTasks(spec, taskData, tok, config, o);
    out.set(spec, { model, tok, seqlen, texts: prepared, cal, plans, tasks });
  }
  return out;
}

export async function writeManifest(
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
      tasks: (o.tasks ?? []).map((t) => t.name),
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
    tasks: first.tasks.map((mt) => ({
      name: mt.entry.name,
      limit: o.limit ?? null,
      num_fewshot: o["num-fewshot"],
      data: mt.prepared.map((p) => ({
        task: p.task.name,
        source: p.data.source,
        revision: p.data.revision,
        sha256: p.data.sha256,
        documents: p.built.length,
      })),
    })),
    calibration: first.cal ? { source: first.cal.file, sha256: first.cal.sha256 } : null,
    invocations: [...(old?.invocations ?? []), invocation],
  });
}

/** Streamed evaluation: windows per pass through the blocks, as many as the budget's slack holds (≤ 8). */
export function windowsPerPass(plan: MemoryPlan, hidden: number, seqlen: number): number {
  if (plan.mode !== "streamed" || plan.budget === null) return 1;
  const slack = plan.budget - plan.streamed;
  return Math.max(1, Math.min(8, 1 + Math.floor(slack / (seqlen * hidden * 4))));
}
