// Provenance for every number we write, and atomic writes so an interrupted run never leaves a
// half-written result behind.

import type { Gpu } from "./gpu/device.ts";

export interface Provenance {
  date: string;
  adapter: string;
  fallback_adapter: boolean;
  shader_f16: boolean;
  deno: string;
  os: string;
  git_commit: string | null;
  git_dirty: boolean | null;
}

export async function provenance(gpu: Gpu): Promise<Provenance> {
  return {
    date: new Date().toISOString(),
    adapter: gpu.name,
    fallback_adapter: gpu.isFallback,
    shader_f16: gpu.hasF16,
    deno: Deno.version.deno,
    os: `${Deno.build.os}-${Deno.build.arch}`,
    ...(await gitState()),
  };
}

async function gitState(): Promise<{ git_commit: string | null; git_dirty: boolean | null }> {
  const run = async (...args: string[]) => {
    try {
      const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
    } catch {
      return null;
    }
  };
  const commit = await run("rev-parse", "HEAD");
  const status = commit === null ? null : await run("status", "--porcelain", "--untracked-files=no");
  return { git_commit: commit, git_dirty: status === null ? null : status.length > 0 };
}

/**
 * Write `parts` one after another to `path` via a temporary file in the same folder and a rename:
 * readers see the old file or the whole new one, never a half-written one.
 */
export async function writeFileAtomic(path: string, parts: Uint8Array[]): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true }).catch((e) => {
    throw new Error(`writing ${path}: cannot create ${dir} (${(e as Error).message})`);
  });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      for (const p of parts) {
        for (let off = 0; off < p.length;) off += await f.write(p.subarray(off));
      }
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    // A full disk or a read-only folder: say which file was being written.
    throw new Error(`writing ${path}: ${(e as Error).message}`);
  }
}

export const writeTextAtomic = (path: string, text: string): Promise<void> =>
  writeFileAtomic(path, [new TextEncoder().encode(text)]);

export const writeJsonAtomic = (path: string, value: unknown): Promise<void> =>
  writeTextAtomic(path, jsonText(value));

const FLOAT_MARK = "\u0000float:";

/**
 * A number JSON must spell as a float (6 → 6.0): readers that parse JSON into Python check types
 * (transformers' BitsAndBytesConfig raises unless llm_int8_threshold is a float).
 */
export class JsonFloat {
  constructor(readonly value: number) {}
  toJSON(): string {
    return FLOAT_MARK + String(this.value);
  }
}

/** Indented JSON with a newline, JsonFloat values written as float literals. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /"\\u0000float:([^"]*)"/g,
    (_, v: string) => (/^-?\d+$/.test(v) ? `${v}.0` : v),
  ) + "\n";
}
