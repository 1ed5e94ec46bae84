// A notebook's source hash: its cells' sources plus every local module its code cells import
// (the whole graph, from `deno info --json`) and every WGSL shader (loaded at run time). The
// committed notebooks carry the hash their outputs were computed at (metadata.quantlab.source_hash);
// a test recomputes it, so outputs cannot silently go stale when the code changes.

import { createHash } from "node:crypto";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = resolve(dirname(fromFileUrl(import.meta.url)), "../..");

interface Cell {
  cell_type: string;
  source: string | string[];
}

const text = (s: string | string[]) => (Array.isArray(s) ? s.join("") : s);

/** Local modules (absolute paths) reachable from the notebook's relative imports. */
export async function notebookModules(path: string): Promise<string[]> {
  const nb = JSON.parse(await Deno.readTextFile(path)) as { cells: Cell[] };
  const dir = dirname(resolve(path));
  const roots = new Set<string>();
  for (const c of nb.cells) {
    if (c.cell_type !== "code") continue;
    for (const m of text(c.source).matchAll(/from\s+"(\.{1,2}\/[^"]+)"/g)) roots.add(resolve(dir, m[1]));
  }
  const files = new Set<string>();
  for (const root of roots) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!out.success) throw new Error(`deno info ${root}: ${new TextDecoder().decode(out.stderr)}`);
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
    for (const m of info.modules) {
      if (!m.specifier.startsWith("file://")) continue;
      const p = fromFileUrl(m.specifier);
      if (!relative(ROOT, p).startsWith("..")) files.add(p);
    }
  }
  for await (const e of Deno.readDir(`${ROOT}/shaders`)) {
    if (e.name.endsWith(".wgsl")) files.add(`${ROOT}/shaders/${e.name}`);
  }
  return [...files].sort();
}

export async function notebookSourceHash(path: string): Promise<string> {
  const nb = JSON.parse(await Deno.readTextFile(path)) as { cells: Cell[] };
  const h = createHash("sha256");
  h.update(JSON.stringify(nb.cells.map((c) => [c.cell_type, text(c.source)])));
  for (const f of await notebookModules(path)) {
    h.update(`\0${relative(ROOT, f)}\0`);
    h.update(await Deno.readFile(f));
  }
  return h.digest("hex");
}
