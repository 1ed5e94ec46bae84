// PyTorch .bin checkpoints: the reader against torch itself (files torch.save writes here: every
// dtype, views with offsets and strides, shared storages, nn.Module state dicts, a 2-shard index),
// the fixture tiny-opt-bin against tiny-opt, and hostile or broken files — each refused with the
// file (and tensor or global) named, nothing executed.

import assert from "node:assert";
import { Checkpoint } from "../../lib/io/checkpoint.ts";
import { TorchFile } from "../../lib/io/torch_bin.ts";
import { f32ToF16 } from "../../lib/gpu/tensor.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const hasPython = (await python()) !== null;
const hasTorch = hasPython && await runPython("import torch").then(() => true, () => false);
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const BIN = `${FIXTURES}/tiny-opt-bin`;

Deno.test({
  name: "files torch.save writes read back as torch.load reads them (dtypes, views, shared storage, shards)",
  ignore: !hasTorch,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const out = await runPython(
      `
import sys, json, torch
from collections import OrderedDict
d = sys.argv[1]
g = torch.Generator().manual_seed(0)
base = torch.randn(6, 8, generator=g)
sd = {
  "f32": torch.randn(3, 5, generator=g),
  "f16": torch.randn(7, generator=g).half(),
  "bf16": torch.randn(2, 3, generator=g).bfloat16(),
  "f64": torch.randn(4, generator=g).double(),
  "i64": torch.tensor([2**40, -1, 3]),
  "i32": torch.arange(-4, 5, dtype=torch.int32).reshape(3, 3),
  "i16": torch.tensor([-300, 300], dtype=torch.int16),
  "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
  "u8": torch.arange(11, dtype=torch.uint8),
  "bool": torch.tensor([True, False, True]),
  "scalar": torch.tensor(1.5),
  "empty": torch.zeros(0, 4),
  "base": base,
  "transposed": base.t(),            # non-contiguous, same storage
  "slice": base[2:5, 1:7],           # storage offset + strides
  "tied": base,                      # the same tensor twice (a tied head)
  "param": torch.nn.Parameter(torch.randn(3, generator=g)),
}
torch.save(sd, f"{d}/single.bin")
# an nn.Module's state dict: an OrderedDict carrying _metadata (BUILD in the pickle)
torch.save(torch.nn.Linear(4, 3).state_dict(), f"{d}/module.bin")
# a 2-shard checkpoint with its index
torch.save({"a": base[:3].clone(), "b": sd["f16"]}, f"{d}/pytorch_model-00001-of-00002.bin")
torch.save({"c": sd["i32"]}, f"{d}/pytorch_model-00002-of-00002.bin")
json.dump({"metadata": {}, "weight_map": {"a": "pytorch_model-00001-of-00002.bin",
  "b": "pytorch_model-00001-of-00002.bin", "c": "pytorch_model-00002-of-00002.bin"}},
  open(f"{d}/pytorch_model.bin.index.json", "w"))
res = {}
for f in ["single.bin", "module.bin", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]:
  for k, t in torch.load(f"{d}/{f}", weights_only=True).items():
    res[f + ":" + k] = [str(t.dtype), list(t.shape), t.contiguous().flatten().view(torch.uint8).numpy().tobytes().hex()]
print(json.dumps(res))
`,
      [dir],
    );
    const want = JSON.parse(out) as Record<string, [string, number[], string]>;
    const dtypes: Record<string, string> = {
      "torch.float32": "F32",
      "torch.float16": "F16",
      "torch.bfloat16": "BF16",
      "torch.float64": "F64",
      "torch.int64": "I64",
      "torch.int32": "I32",
      "torch.int16": "I16",
      "torch.int8": "I8",
      "torch.uint8": "U8",
      "torch.bool": "BOOL",
    };
    const files = new Map<string, TorchFile>();
    for (const [key, [dtype, shape, bytes]] of Object.entries(want)) {
      const [file, name] = key.split(":");
      if (!files.has(file)) files.set(file, await TorchFile.open(`${dir}/${file}`));
      const f = files.get(file)!;
      assert.deepStrictEqual(f.info(name).shape, shape, key);
      assert.strictEqual(f.info(name).dtype, dtypes[dtype], key);
      assert.strictEqual(hex(await f.readBytes(name)), bytes, key);
    }
    assert.deepStrictEqual(files.get("module.bin")!.names().sort(), ["bias", "weight"]);
    // The sharded layout through the one checkpoint API, and the index must name what the shards hold.
    const ck = await Checkpoint.open(dir);
    assert.strictEqual(ck.format, "pytorch");
    assert.deepStrictEqual(ck.names().sort(), ["a", "b", "c"]);
    assert.strictEqual(hex(await ck.readBytes("c")), want["pytorch_model-00002-of-00002.bin:c"][2]);
    const idx = JSON.parse(await Deno.readTextFile(`${dir}/pytorch_model.bin.index.json`));
    idx.weight_map.d = "pytorch_model-00002-of-00002.bin";
    await Deno.writeTextFile(`${dir}/pytorch_model.bin.index.json`, JSON.stringify(idx));
    await assert.rejects(
      Checkpoint.open(dir),
      /pytorch_model-00002-of-00002\.bin: the index lists tensor d here/,
    );
    idx.weight_map.d = "pytorch_model-00003-of-00003.bin";
    await Deno.writeTextFile(`${dir}/pytorch_model.bin.index.json`, JSON.stringify(idx));
    await assert.rejects(
      Checkpoint.open(dir),
      /pytorch_model\.bin\.index\.json: names shard pytorch_model-00003-of-00003\.bin, which is not in/,
    );
  },
});

Deno.test("tiny-opt-bin: the fp16 .bin shards hold tiny-opt's weights rounded to fp16, under the Hub key names", async () => {
  const bin = await Checkpoint.open(BIN), st = await Checkpoint.open(`${FIXTURES}/tiny-opt`);
  assert.strictEqual(bin.format, "pytorch");
  assert.ok(bin.names().every((n) => !n.startsWith("model.")), "facebook/opt key names (no model. prefix)");
  for (const name of bin.names()) {
    const src = name === "lm_head.weight" ? "model.decoder.embed_tokens.weight" : `model.${name}`;
    assert.strictEqual(bin.info(name).dtype, "F16", name);
    assert.deepStrictEqual(bin.info(name).shape, st.info(src).shape, name);
    const want = f32ToF16(await st.readF32(src));
    assert.deepStrictEqual(new Uint16Array((await bin.readBytes(name)).buffer), want, name);
  }
});

/** A zip laid out as torch.save lays it out, holding `pickle` (Python source building the bytes). */
async function craftedBin(path: string, pickleExpr: string, storages: Record<string, number> = {}) {
  await runPython(
    `
import sys, zipfile, pickle, os, subprocess, builtins
path = sys.argv[1]
data = ${pickleExpr}
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
  z.writestr("archive/data.pkl", data)
  z.writestr("archive/byteorder", "little")
  for key, n in ${JSON.stringify(storages)}.items():
    z.writestr(f"archive/data/{key}", bytes(n))
  z.writestr("archive/version", "3\\n")
`,
    [path],
  );
}

// A state dict {"w": _rebuild_tensor_v2(storage '0' of `numel` floats, offset, shape, stride)} in raw opcodes.
const tensorPickle = (numel: number, shape: number[], offset = 0) => {
  const tup = (xs: number[]) =>
    `(b"(" + b"".join(b"J" + x.to_bytes(4, "little") for x in ${JSON.stringify(xs)}) + b"t")`;
  const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return `(b"\\x80\\x02}X\\x01\\x00\\x00\\x00w" + b"ctorch._utils\\n_rebuild_tensor_v2\\n(" +
    b"(X\\x07\\x00\\x00\\x00storagectorch\\nFloatStorage\\nX\\x01\\x00\\x00\\x000X\\x03\\x00\\x00\\x00cpuJ" +
    (${numel}).to_bytes(4, "little") + b"tQJ" + (${offset}).to_bytes(4, "little") + ${tup(shape)} + ${
    tup(stride)
  } +
    b"\\x89ccollections\\nOrderedDict\\n)RtRs.")`;
};

Deno.test({
  name:
    "hostile pickles: os.system, subprocess.Popen via __reduce__, builtins.eval — refused by name, nothing run",
  ignore: !hasPython,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const marker = `${dir}/pwned`;
    const cases: [string, string, RegExp][] = [
      [
        "os-system.bin",
        `pickle.dumps({"w": type("E", (), {"__reduce__": lambda s: (os.system, ("touch ${marker}",))})()}, protocol=2)`,
        /refusing global (posix|os)\.system/,
      ],
      [
        "popen.bin",
        `pickle.dumps({"w": type("E", (), {"__reduce__": lambda s: (subprocess.Popen, (["touch", "${marker}"],))})()}, protocol=2, fix_imports=False)`,
        /refusing global subprocess\.Popen/,
      ],
      [
        "eval.bin",
        `pickle.dumps({"w": type("E", (), {"__reduce__": lambda s: (builtins.eval, ("open('${marker}','w')",))})()}, protocol=4)`,
        /refusing global builtins\.eval/,
      ],
    ];
    for (const [file, expr, re] of cases) {
      await craftedBin(`${dir}/${file}`, expr);
      await assert.rejects(TorchFile.open(`${dir}/${file}`), (e: Error) => {
        assert.match(e.message, re, `${file}: ${e.message}`);
        assert.ok(e.message.startsWith(`${dir}/${file}: `), `names the file: ${e.message}`);
        return true;
      });
    }
    assert.ok(!(await Deno.stat(marker).then(() => true, () => false)), "nothing was executed");
  },
});

Deno.test({
  name: "broken files: truncated zip, missing data entry, storage shorter than the shape, legacy format",
  ignore: !hasPython,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    // A well-formed crafted file first, so the failures below are the faults and not the crafting.
    await craftedBin(`${dir}/ok.bin`, tensorPickle(12, [3, 4]), { "0": 48 });
    const ok = await TorchFile.open(`${dir}/ok.bin`);
    assert.deepStrictEqual([ok.info("w").shape, (await ok.readBytes("w")).length], [[3, 4], 48]);

    const shard = await Deno.readFile(`${BIN}/pytorch_model-00001-of-00002.bin`);
    await Deno.writeFile(`${dir}/truncated.bin`, shard.subarray(0, shard.length >> 1));
    await assert.rejects(
      TorchFile.open(`${dir}/truncated.bin`),
      /truncated\.bin: not a PyTorch zip checkpoint.*truncated/,
    );

    await craftedBin(`${dir}/nodata.bin`, tensorPickle(12, [3, 4]));
    await assert.rejects(
      TorchFile.open(`${dir}/nodata.bin`),
      /nodata\.bin: tensor w: its storage archive\/data\/0 is missing/,
    );

    await craftedBin(`${dir}/short-entry.bin`, tensorPickle(12, [3, 4]), { "0": 40 });
    await assert.rejects(
      TorchFile.open(`${dir}/short-entry.bin`),
      /short-entry\.bin: tensor w: storage 0 holds 40 bytes, its header says 12 × F32/,
    );
    await craftedBin(`${dir}/short-storage.bin`, tensorPickle(8, [3, 4]), { "0": 32 });
    await assert.rejects(
      TorchFile.open(`${dir}/short-storage.bin`),
      /short-storage\.bin: tensor w: shape \[3,4\] stride \[4,1\] at offset 0 needs 12 elements, storage 0 has 8/,
    );
    await craftedBin(`${dir}/offset.bin`, tensorPickle(12, [3, 4], 2), { "0": 48 });
    await assert.rejects(
      TorchFile.open(`${dir}/offset.bin`),
      /offset\.bin: tensor w: .* at offset 2 needs 14 elements/,
    );

    // torch < 1.6 wrote a bare pickle stream starting with its magic number.
    await Deno.writeFile(
      `${dir}/legacy.bin`,
      new Uint8Array([
        0x80,
        0x02,
        0x8a,
        0x0a,
        0x6c,
        0xfc,
        0x9c,
        0x46,
        0xf9,
        0x20,
        0x6a,
        0xa8,
        0x50,
        0x19,
        0x2e,
      ]),
    );
    await assert.rejects(
      TorchFile.open(`${dir}/legacy.bin`),
      /legacy\.bin: legacy torch\.save format \(PyTorch < 1\.6\)/,
    );
  },
});

Deno.test({
  name: "bench refuses a hostile .bin before any cell: exit 2, the global and file named, nothing written",
  ignore: !hasPython,
  fn: async () => {
    const model = await Deno.makeTempDir(), out = `${await Deno.makeTempDir()}/out`;
    for (const f of ["config.json", "tokenizer.json"]) await Deno.copyFile(`${BIN}/${f}`, `${model}/${f}`);
    await craftedBin(
      `${model}/pytorch_model.bin`,
      `pickle.dumps({"w": type("E", (), {"__reduce__": lambda s: (os.system, ("touch ${out}",))})()}, protocol=2)`,
    );
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../lib/cli/bench.ts", import.meta.url).pathname,
        ...[
          "--model",
          model,
          "--dataset",
          `${FIXTURES}/text/wiki.test.raw`,
          "--methods",
          "fp,rtn",
          "--out",
          out,
        ],
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(cli.stderr);
    assert.strictEqual(cli.code, 2, err);
    assert.match(err, new RegExp(`error: ${model}/pytorch_model\\.bin: refusing global (posix|os)\\.system`));
    assert.ok(!(await Deno.stat(out).then(() => true, () => false)), "nothing written (and nothing run)");
  },
});
