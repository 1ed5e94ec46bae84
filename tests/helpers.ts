// Test helpers: the shared GPU, poisoned outputs, and the error measure every kernel test uses.

import { getGpu, type Gpu } from "../lib/gpu/device.ts";
import { empty, upload } from "../lib/gpu/tensor.ts";
import { relErr } from "../lib/cpu/ref.ts";
import { Checkpoint } from "../lib/io/checkpoint.ts";
import { type TensorToWrite, writeSafetensors } from "../lib/io/safetensors.ts";

export { relErr };

export { getGpu };
export type { Gpu };

/**
 * Make the next pooled buffer of this size hold NaN, so an output element the kernel forgot to
 * write fails the comparison instead of passing with stale data.
 */
export function poisonNext(gpu: Gpu, numel: number): void {
  const t = upload(gpu, new Float32Array(numel).fill(NaN), [numel], "poison");
  t.release();
}

/** A tensor whose every element is NaN (for outputs passed in explicitly). */
export function poisoned(gpu: Gpu, shape: number[]) {
  poisonNext(gpu, shape.reduce((a, b) => a * b, 1));
  return empty(gpu, shape, "f32", "poisoned");
}

export function assertClose(a: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what: string): void {
  const e = relErr(a, ref);
  if (!(e < tol)) throw new Error(`${what}: relative error ${e.toExponential(3)} ≥ ${tol}`);
}

/** Bit-for-bit equality of two f32 arrays, naming the first difference (node's deepStrictEqual
 * builds a diff of the whole array on failure, which for 10⁵ elements exhausts memory). */
export function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: lengths ${a.length} and ${b.length}`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i]) throw new Error(`${what}: element ${i} is ${a[i]}, expected ${b[i]} (bits differ)`);
  }
}

/** Run f with the adapter's binding limit lowered, to exercise the split-into-windows path. */
export async function withBindingLimit<T>(gpu: Gpu, bytes: number, f: () => Promise<T>): Promise<T> {
  const saved = gpu.maxBinding;
  gpu.maxBinding = bytes;
  try {
    return await f();
  } finally {
    gpu.maxBinding = saved;
  }
}

/** Fill the embedding row of `token` with NaN, so any window using it carries NaN activations. */
export function poisonEmbeddingRow(model: { gpu: Gpu; config: { hidden: number } }, token: number): void {
  const embed = (model as unknown as { others: Map<string, { buffer: GPUBuffer; dtype: string }> }).others
    .get("model.embed_tokens.weight")!;
  const hidden = model.config.hidden;
  // A 16-bit table (the fixture is f16) holds NaN as 0x7e00 (f16) / 0x7fc0 (bf16).
  const row = embed.dtype === "f32"
    ? new Float32Array(hidden).fill(NaN)
    : new Uint16Array(hidden).fill(embed.dtype === "f16" ? 0x7e00 : 0x7fc0);
  model.gpu.device.queue.writeBuffer(embed.buffer, token * hidden * row.BYTES_PER_ELEMENT, row);
}

/**
 * A copy of model folder `src` (its config.json and tokenizer.json) whose tensors are written as
 * one safetensors file, each passed through `change` first (as they are by default): the same
 * bytes in another format, another dtype, or with one field altered.
 */
export async function rewriteCheckpoint(
  src: string,
  change: (t: TensorToWrite, ck: Checkpoint) => TensorToWrite | Promise<TensorToWrite> = (t) => t,
): Promise<string> {
  const dir = await Deno.makeTempDir();
  const ck = await Checkpoint.open(src);
  const ts: TensorToWrite[] = [];
  for (const name of ck.names()) {
    ts.push(await change({ ...ck.info(name), name, data: await ck.readBytes(name) }, ck));
  }
  await writeSafetensors(`${dir}/model.safetensors`, ts);
  for (const f of ["config.json", "tokenizer.json"]) await Deno.copyFile(`${src}/${f}`, `${dir}/${f}`);
  return dir;
}

const BENCH_CLI = new URL("../lib/cli/bench.ts", import.meta.url).pathname;

/** `deno task bench ARGS` as a child process: its exit code and stderr (NO_COLOR, plus `env`). */
export async function benchCli(args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BENCH_CLI, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr) };
}
