// safetensors: interop with Python's safetensors (both directions) and npm:safetensors as an
// independent reader, then every malformed-header case, each refused with file and tensor named.

import assert from "node:assert";
import { SafeTensor } from "safetensors";
import { parseHeader, SafetensorsFile, writeSafetensors } from "../../lib/io/safetensors.ts";
import { python, runPython } from "../python.ts";

const hasPython = (await python()) !== null;
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test({
  name: "files written by Python's safetensors read back byte for byte",
  ignore: !hasPython,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const out = await runPython(
      `
import sys, json, numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(0)
t = {
  "w.f32": rng.standard_normal((3, 5)).astype(np.float32),
  "w.f16": rng.standard_normal((7,)).astype(np.float16),
  "w.i32": np.arange(-4, 5, dtype=np.int32).reshape(3, 3),
  "w.i64": np.array([2**40, -1], dtype=np.int64),
  "w.u8": np.arange(11, dtype=np.uint8),
  "empty": np.zeros((0, 4), dtype=np.float32),
  "scalar": np.array(1.5, dtype=np.float64),
}
save_file(t, sys.argv[1], metadata={"format": "np", "who": "python"})
print(json.dumps({k: [str(v.dtype), list(v.shape), v.tobytes().hex()] for k, v in t.items()}))
`,
      [`${dir}/py.safetensors`],
    );
    const want = JSON.parse(out) as Record<string, [string, number[], string]>;
    const f = await SafetensorsFile.open(`${dir}/py.safetensors`);
    assert.deepStrictEqual(f.header.metadata, { format: "np", who: "python" });
    assert.deepStrictEqual(f.names().sort(), Object.keys(want).sort());
    for (const [name, [, shape, bytes]] of Object.entries(want)) {
      assert.deepStrictEqual(f.info(name).shape, shape, name);
      assert.strictEqual(hex(await f.readBytes(name)), bytes, name);
    }
  },
});

async function writeOurs(path: string, metadata: Record<string, string> | null = { producer: "quantlab" }) {
  const f32 = Float32Array.from({ length: 12 }, (_, i) => i * 0.25 - 1);
  const u16 = new Uint16Array([0x3c00, 0xc000, 0x7bff]); // f16 bits
  const i32 = new Int32Array([7, -7, 2 ** 31 - 1]);
  const u8 = new Uint8Array([1, 2, 3, 4, 5]);
  await writeSafetensors(path, [
    { name: "a", dtype: "F32", shape: [3, 4], data: f32 },
    { name: "b.half", dtype: "F16", shape: [3], data: u16 },
    { name: "c", dtype: "I32", shape: [3, 1], data: i32 },
    { name: "d", dtype: "U8", shape: [5], data: u8 },
  ], metadata ?? undefined);
  return { a: f32, "b.half": u16, c: i32, d: u8 } as Record<string, ArrayBufferView>;
}

Deno.test({
  name: "files we write are read exactly by Python's safetensors",
  ignore: !hasPython,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const mine = await writeOurs(`${dir}/ours.safetensors`);
    const out = await runPython(
      `
import sys, json
from safetensors import safe_open
with safe_open(sys.argv[1], "np") as f:
  print(json.dumps({"meta": f.metadata(), "t": {k: [list(f.get_tensor(k).shape), f.get_tensor(k).tobytes().hex()] for k in f.keys()}}))
`,
      [`${dir}/ours.safetensors`],
    );
    const got = JSON.parse(out);
    assert.deepStrictEqual(got.meta, { producer: "quantlab" });
    for (const [name, data] of Object.entries(mine)) {
      assert.strictEqual(
        got.t[name][1],
        hex(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)),
        name,
      );
    }
    assert.deepStrictEqual(got.t.a[0], [3, 4]);
  },
});

Deno.test("files we write are read exactly by npm:safetensors, an independent reader", async () => {
  const dir = await Deno.makeTempDir();
  // npm:safetensors cannot read a __metadata__ entry (it expects offsets on every key): write none.
  const mine = await writeOurs(`${dir}/ours.safetensors`, null);
  const st = new SafeTensor(await Deno.readFile(`${dir}/ours.safetensors`));
  for (const [name, data] of Object.entries(mine)) {
    assert.deepStrictEqual(
      st.getTensor(name),
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      name,
    );
  }
  // Our reader round-trips it too.
  const f = await SafetensorsFile.open(`${dir}/ours.safetensors`);
  assert.deepStrictEqual(new Int32Array((await f.readBytes("c")).buffer), mine.c);
});

/** A file with a hand-made header and `data` bytes. */
async function craft(header: unknown, data: number, headerLenOverride?: number): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const buf = new Uint8Array(8 + json.length + data);
  new DataView(buf.buffer).setBigUint64(0, BigInt(headerLenOverride ?? json.length), true);
  buf.set(json, 8);
  await Deno.writeFile(path, buf);
  return path;
}

Deno.test("malformed safetensors are refused with file and tensor named", async () => {
  const ok = {
    x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    y: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
  };
  const cases: [string, Promise<string>, RegExp][] = [
    [
      "truncated data",
      craft(ok, 6),
      /tensor x: data ends at byte 8 of the data section, but the file has only 6 data bytes \(truncated\?\)/,
    ],
    [
      "header length past the end",
      craft(ok, 12, 10_000),
      /header length 10000 runs past the end of the \d+-byte file/,
    ],
    [
      "header length over the cap",
      craft(ok, 12, 2 ** 40),
      /header length 1099511627776 exceeds the 100000000-byte cap/,
    ],
    [
      "overlapping offsets",
      craft({
        x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        y: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
      }, 8),
      /tensor y: bytes \[4, 8\) overlap the previous tensor/,
    ],
    [
      "unknown dtype",
      craft({ x: { dtype: "F12", shape: [1], data_offsets: [0, 4] } }, 4),
      /tensor x: unknown dtype "F12"/,
    ],
    [
      "shape and byte length disagree",
      craft({ x: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }, 8),
      /tensor x: shape \[3\] × F16 is 6 bytes, but data_offsets span 8/,
    ],
    [
      "a gap",
      craft({ x: { dtype: "U8", shape: [2], data_offsets: [2, 4] } }, 4),
      /tensor x: gap before byte 2/,
    ],
    [
      "trailing bytes",
      craft({ x: { dtype: "U8", shape: [2], data_offsets: [0, 2] } }, 5),
      /3 bytes after the last tensor/,
    ],
    ["header not JSON", craft("{oops", 0), /header is not a JSON object|not valid JSON/],
  ];
  for (const [what, p, re] of cases) {
    const path = await p;
    await assert.rejects(SafetensorsFile.open(path), (e: Error) => {
      assert.match(e.message, re, what);
      assert.ok(e.message.startsWith(path), `${what}: the error names the file`);
      return true;
    });
  }
  const tiny = await Deno.makeTempFile();
  await Deno.writeFile(tiny, new Uint8Array(5));
  await assert.rejects(SafetensorsFile.open(tiny), /file is 5 bytes, too short for a header length/);
  assert.throws(
    () => parseHeader("h", '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', 0, 8),
    /reversed/,
  );
});

Deno.test("a tensor that is missing, or whose bytes end early, is named", async () => {
  const path = await craft({ x: { dtype: "U8", shape: [4], data_offsets: [0, 4] } }, 4);
  const f = await SafetensorsFile.open(path);
  await assert.rejects(f.readBytes("nope"), /no tensor named nope/);
  await Deno.truncate(path, (await Deno.stat(path)).size - 2); // shrinks after the header was read
  await assert.rejects(f.readBytes("x"), /tensor x: unexpected end of file/);
});

Deno.test("the writer refuses inconsistent tensors and leaves no partial file", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    writeSafetensors(`${dir}/bad.safetensors`, [{
      name: "a",
      dtype: "F32",
      shape: [3],
      data: new Float32Array(2),
    }]),
    /tensor a: shape \[3\] × F32 needs 12 bytes, got 8/,
  );
  assert.deepStrictEqual([...Deno.readDirSync(dir)], []);
});
