// The module graph the method contract promises: the model loader depends on the format
// interface (lib/model/format.ts), not on the methods — nothing under lib/model imports lib/quant,
// lib/methods or the harness — and the methods' math (lib/quant) does not import the registry.

import assert from "node:assert";

const LIB = new URL("../../lib/", import.meta.url);

/** Relative imports of every .ts file under lib/<dir>, resolved to lib-relative paths. */
async function importsOf(dir: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(new URL(rel, LIB))) {
      const p = `${rel}${e.name}`;
      if (e.isDirectory) await walk(`${p}/`);
      else if (p.endsWith(".ts")) {
        const text = await Deno.readTextFile(new URL(p, LIB));
        for (const m of text.matchAll(/^(?:import|export)[^;]*?from\s+"(\.[^"]+)"/gms)) {
          const target = new URL(m[1], new URL(p, LIB)).pathname.slice(LIB.pathname.length);
          out.push([p, target]);
        }
      }
    }
  };
  await walk(`${dir}/`);
  return out;
}

Deno.test("lib/model imports no method, format module or harness; lib/quant no registry", async () => {
  const model = await importsOf("model");
  assert.ok(model.length > 20, "the scan found lib/model's imports");
  const bad = model.filter(([, t]) => /^(quant|methods|bench|cli)\//.test(t) || t === "load.ts");
  assert.deepStrictEqual(bad, [], "lib/model → methods/formats/harness");
  const quant = await importsOf("quant");
  const badQ = quant.filter(([, t]) => /^(methods|bench|cli)\//.test(t) || t === "load.ts");
  assert.deepStrictEqual(badQ, [], "lib/quant → registry/harness");
  const io = await importsOf("io");
  assert.deepStrictEqual(
    io.filter(([, t]) => /^(quant|methods|model|bench)\//.test(t)),
    [],
    "lib/io → upward",
  );
});
