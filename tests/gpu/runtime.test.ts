// The runtime itself: adapter facts, buffer pool accounting, uploads and dtype conversions,
// row windows, timestamps, and the three failure modes the issue names — a shader that fails to
// compile, a binding over the adapter's limit, a device lost mid-run — each a clear error.

import assert from "node:assert";
import { createGpu } from "../../lib/gpu/device.ts";
import { Batch, preprocess } from "../../lib/gpu/kernel.ts";
import {
  bf16ToF32,
  empty,
  f16ToF32,
  f32ToF16,
  read,
  readF32,
  rowWindows,
  Tensor,
  upload,
} from "../../lib/gpu/tensor.ts";
import { BudgetError } from "../../lib/gpu/pool.ts";
import { copy } from "../../lib/kernels/copy.ts";
import { matmul } from "../../lib/kernels/matmul.ts";
import { getGpu } from "../helpers.ts";

Deno.test("the adapter is named, with its limits and features", async () => {
  const gpu = await getGpu();
  assert.ok(gpu.name.length > 0);
  assert.ok(gpu.maxBinding >= 128 << 20, `max binding ${gpu.maxBinding}`);
  assert.ok(gpu.offsetAlign >= 4);
  assert.strictEqual(gpu.hasF16, gpu.adapter.features.has("shader-f16"));
});

Deno.test("the pool counts bytes in use and the peak, and reuses freed buffers", async () => {
  const gpu = await createGpu();
  const a = empty(gpu, [1000]), b = empty(gpu, [3, 7]);
  const stats = (inUse: number, peak: number, reserved: number, peakHeld: number, buffers: number) => ({
    inUse,
    peak,
    reserved,
    peakHeld,
    buffers,
    budget: null,
  });
  assert.deepStrictEqual(gpu.pool.stats(), stats(4096, 4096, 0, 4096, 2));
  const aBuf = a.buffer;
  a.release();
  a.release(); // idempotent
  assert.strictEqual(gpu.pool.stats().inUse, 96);
  assert.strictEqual(gpu.pool.stats().peak, 4096);
  const c = empty(gpu, [1000]);
  assert.strictEqual(c.buffer, aBuf, "a freed buffer of the same size is reused");
  assert.strictEqual(gpu.pool.stats().buffers, 2);
  c.release();
  b.release();
  gpu.pool.trim();
  assert.deepStrictEqual(gpu.pool.stats(), stats(0, 4096, 0, 4096, 0));
  gpu.device.destroy();
});

Deno.test("offload moves a tensor to host memory and back byte-exactly; changed=false keeps the old copy", async () => {
  const gpu = await createGpu();
  const f = new Float32Array([1.5, -0, Infinity, 3e-39, 7, NaN]);
  const t = upload(gpu, f, [6], "w");
  const h = upload(gpu, new Uint16Array([0x3c00, 0x8001, 0x7bff]), [3], "h", "bf16");
  await t.offload();
  await h.offload();
  assert.ok(!t.resident && !h.resident);
  assert.strictEqual(gpu.pool.stats().inUse, 0, "the buffers went back to the pool");
  assert.throws(() => t.buffer, /tensor w is offloaded to host memory/);
  await t.reload(), await h.reload();
  assert.deepStrictEqual(new Uint8Array((await read(t)).buffer), new Uint8Array(f.buffer));
  assert.deepStrictEqual([...(await read(h))], [0x3c00, 0x8001, 0x7bff]);
  // A kernel-side write (here a copy) is kept only when the offload is told the tensor changed.
  const z = upload(gpu, new Float32Array(6), [6], "zeros");
  const b = new Batch(gpu);
  b.copy(z.buffer, 0, t.buffer, 0, 24);
  await b.done();
  await t.offload(false);
  await t.reload();
  assert.deepStrictEqual(
    new Uint8Array((await read(t)).buffer),
    new Uint8Array(f.buffer),
    "stale copy by request",
  );
  const b2 = new Batch(gpu);
  b2.copy(z.buffer, 0, t.buffer, 0, 24);
  await b2.done();
  await t.offload(true);
  await t.reload();
  assert.deepStrictEqual([...(await read(t))], [0, 0, 0, 0, 0, 0]);
  // Born in host memory: no GPU bytes until reloaded.
  const o = Tensor.onHost(gpu, new Float32Array([3, 4]), [2], "f32", "host");
  assert.ok(!o.resident);
  await o.reload();
  assert.deepStrictEqual([...(await read(o))], [3, 4]);
  for (const x of [t, h, z, o]) x.release();
  gpu.device.destroy();
});

Deno.test("a GPU memory budget: cached buffers are destroyed before it is crossed, and live bytes over it are refused", async () => {
  const gpu = await createGpu();
  gpu.pool.budget = 10000;
  const a = empty(gpu, [1000]); // 4000 bytes
  a.release(); // cached
  await new Batch(gpu).done(); // a submit: the cached buffer is no longer named by pending work
  const b = empty(gpu, [1500]); // 6000 bytes: 4000 cached + 6000 fits exactly
  assert.strictEqual(gpu.pool.stats().reserved, 4000);
  const c = empty(gpu, [10]); // 48 more would cross: the cached 4000 are destroyed first
  assert.strictEqual(gpu.pool.stats().reserved, 0);
  assert.throws(
    () => empty(gpu, [1000], "f32", "big"),
    (e: Error) =>
      e instanceof BudgetError &&
      /buffer big: 4000 bytes on top of 6048 in use exceeds the GPU memory budget of 10000 bytes \(--gpu-memory\)/
        .test(e.message),
  );
  assert.ok(gpu.pool.stats().peakHeld <= 10000);
  b.release(), c.release();
  gpu.device.destroy();
});

Deno.test("a kept texture (a weight's texture layout) is made once, counted like a buffer, and goes with its tensor", async () => {
  const gpu = await createGpu();
  const data = Float32Array.from({ length: 64 * 4 }, (_, i) => i);
  const t = upload(gpu, data, [4, 64], "w");
  const base = gpu.pool.stats().inUse;
  const b = new Batch(gpu);
  const v1 = b.keptTexture(t, 64, 4, "r32float", 256);
  assert.strictEqual(b.keptTexture(t, 64, 4, "r32float", 256), v1, "the second call reuses it");
  assert.strictEqual(gpu.pool.stats().inUse, base + 1024);
  await b.done();
  // Read back through a kernel in a later batch: the texture holds the tensor's bytes.
  const src = `@group(0) @binding(0) var tx: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  for (var r = 0u; r < 4u; r++) { y[r * 64u + g.x] = textureLoad(tx, vec2<u32>(g.x, r), 0).x; }
}`;
  const b2 = new Batch(gpu);
  const y = empty(gpu, [256]);
  b2.dispatch({ name: "kept_texture_test", source: src }, [b2.keptTexture(t, 64, 4, "r32float", 256), y], [
    1,
    1,
    1,
  ], "");
  await b2.done();
  assert.deepStrictEqual(await readF32(y), data);
  await t.offload(); // the texture goes with the buffer
  // t's buffer and its texture are uncounted; y (1024 bytes) is live: back to `base`.
  assert.strictEqual(gpu.pool.stats().inUse, base);
  await t.reload();
  assert.strictEqual(t.keptTexture("64x4 r32float 256"), undefined);
  // Now streamed (a host copy): a per-batch texture, nothing kept or counted.
  const b3 = new Batch(gpu);
  b3.keptTexture(t, 64, 4, "r32float", 256);
  assert.strictEqual(t.keptTexture("64x4 r32float 256"), undefined);
  assert.strictEqual(gpu.pool.stats().inUse, base + 1024);
  await b3.done();
  const u = upload(gpu, data, [4, 64], "u");
  gpu.pool.budget = gpu.pool.stats().inUse + 512;
  assert.throws(() => new Batch(gpu).keptTexture(u, 64, 4, "r32float", 256), BudgetError);
  gpu.device.destroy();
});

Deno.test("uploads round-trip f32, u32, i32 and f16 bits exactly", async () => {
  const gpu = await getGpu();
  const f = new Float32Array([1.5, -0, Infinity, 3e-39, 7]);
  const u = new Uint32Array([0, 1, 0xffffffff]);
  const i = new Int32Array([-5, 2 ** 31 - 1, -(2 ** 31)]);
  const h = new Uint16Array([0x3c00, 0xc000, 0x7bff]); // odd length: padded write
  const ts = [upload(gpu, f, [5]), upload(gpu, u, [3]), upload(gpu, i, [3]), upload(gpu, h, [3])];
  assert.deepStrictEqual(await read(ts[0]), f);
  assert.deepStrictEqual(await read(ts[1]), u);
  assert.deepStrictEqual(await read(ts[2]), i);
  assert.deepStrictEqual(await read(ts[3]), h);
  assert.deepStrictEqual([...(await readF32(ts[3]))], [1, -2, 65504]);
  assert.throws(() => upload(gpu, f, [2, 2]), /5 values do not fill shape \[2, 2\]/);
});

Deno.test("f16 and bf16 conversions are exact against hand-computed values", () => {
  const h = new Uint16Array([0x0000, 0x8000, 0x3c00, 0x3555, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00]);
  const want = [0, -0, 1, 0.333251953125, 2 ** -24, 1023 * 2 ** -24, Infinity, -Infinity, NaN];
  assert.deepStrictEqual([...f16ToF32(h)], want);
  assert.deepStrictEqual([...bf16ToF32(new Uint16Array([0x3f80, 0xc040, 0x3eab]))], [1, -3, 0.333984375]);
  // f32 → f16 rounds to nearest even: 1 + 2^-11 is a tie and goes to 1; 1 + 3·2^-11 goes up.
  assert.deepStrictEqual([...f32ToF16(new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000]))], [
    0x3c00,
    0x3c02,
    0x7c00,
  ]);
});

Deno.test("row windows respect the binding limit and offset alignment", () => {
  const ws = rowWindows(1000, [52 * 4, 90 * 4], 16384, 256); // 32-row steps keep both aligned
  let next = 0;
  for (const w of ws) {
    assert.strictEqual(w.row0, next);
    next += w.rows;
    assert.ok(w.rows * 90 * 4 <= 16384);
    assert.strictEqual((w.row0 * 52 * 4) % 256, 0);
    assert.strictEqual((w.row0 * 90 * 4) % 256, 0);
  }
  assert.strictEqual(next, 1000);
  assert.deepStrictEqual(rowWindows(10, [4], 1 << 20, 256), [{ row0: 0, rows: 10 }]);
  assert.throws(() => rowWindows(4, [5000], 4096, 32), /one row of 5000 bytes exceeds/);
  assert.throws(
    () => rowWindows(100, [360], 8192, 256),
    /cannot split rows of 360 bytes into 256-aligned windows/,
  );
});

Deno.test("timestamp queries time each dispatch", { ignore: !(await getGpu()).hasTimestamps }, async () => {
  const gpu = await getGpu();
  const n = 1 << 16;
  const src = upload(gpu, new Float32Array(n).fill(2), [n]), dst = empty(gpu, [n]);
  const b = new Batch(gpu, { timing: true });
  copy(b, src, dst);
  copy(b, dst, src);
  await b.submit();
  const t = await b.timings();
  assert.strictEqual(t.length, 2);
  assert.ok(t.every((x) => x.ms >= 0 && x.ms < 10_000 && x.label.startsWith("copy")), JSON.stringify(t));
  assert.ok((await readF32(dst)).every((v) => v === 2));
});

Deno.test("a shader that fails to compile is reported with the kernel's name", async () => {
  const gpu = await getGpu();
  const b = new Batch(gpu);
  const out = empty(gpu, [4]);
  const source = "@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n" +
    "@compute @workgroup_size(1) fn main() { o[0] = not_defined; }";
  b.dispatch({ name: "broken_test_kernel", source }, [out], [1, 1, 1], "n=4");
  await assert.rejects(b.submit(), /kernel broken_test_kernel:main failed to compile:[\s\S]*not_defined/);
});

Deno.test("a binding over the adapter's limit is refused, naming kernel and sizes", async () => {
  const gpu = await getGpu();
  const saved = gpu.maxBinding;
  gpu.maxBinding = 64;
  try {
    const b = new Batch(gpu);
    // A single row of 40 f32 (160 bytes) cannot be windowed under 64 bytes.
    assert.throws(
      () => matmul(b, upload(gpu, new Float32Array(40), [1, 40]), upload(gpu, new Float32Array(80), [2, 40])),
      /one row of 160 bytes exceeds the adapter's max storage binding 64/,
    );
    const big = empty(gpu, [100]);
    assert.throws(
      () => b.dispatch({ name: "copy" }, [big, big, b.uniform([25])], [1, 1, 1], "n=100"),
      /kernel copy \(n=100\): binding 0 is 400 bytes, over the adapter's max storage binding of 64 bytes/,
    );
  } finally {
    gpu.maxBinding = saved;
  }
});

Deno.test("a device lost mid-run gives a clear error, never a hang", async () => {
  const gpu = await createGpu();
  const x = upload(gpu, new Float32Array(64).fill(1), [8, 8]);
  const b = new Batch(gpu);
  const y = matmul(b, x, x);
  await b.submit();
  gpu.device.destroy();
  await gpu.lostPromise;
  assert.match(gpu.lost ?? "", /destroyed/);
  assert.throws(() => matmul(new Batch(gpu), x, x), /kernel matmul \(.*\): GPU device lost \(destroyed/);
  await assert.rejects(read(y), /readback of matmul.out: GPU device lost/);
});

Deno.test("an upload never reuses a buffer that an unsubmitted kernel still reads", async () => {
  const gpu = await getGpu();
  const n = 4099; // a size no other test uses
  const a = upload(gpu, new Float32Array(n).fill(3), [n], "a");
  const b = new Batch(gpu);
  const out = empty(gpu, [n]);
  matmul(b, a, upload(gpu, new Float32Array([1]), [1, 1], "one"), undefined, out); // out = a · [1]
  a.release(); // released once its last use is encoded…
  const c = upload(gpu, new Float32Array(n).fill(-1), [n], "c"); // …but its buffer must not take this write
  assert.notStrictEqual(c.buffer, a.buffer);
  await b.submit();
  assert.ok((await readF32(out)).every((v) => v === 3));
  const d = upload(gpu, new Float32Array(n).fill(5), [n], "d"); // after the submit, reuse is safe
  assert.strictEqual(d.buffer, a.buffer);
});

Deno.test("the preprocessor inlines {{include NAME}} (a shared shaders/NAME.wgsl), then the defines", () => {
  const out = preprocess("t", "{{include half_round}}\nconst N = {{N}};", { N: 3 });
  assert.ok(out.includes("fn half(v: f32) -> f32"), "helper inlined");
  assert.ok(out.endsWith("const N = 3;"), "defines substituted");
});
