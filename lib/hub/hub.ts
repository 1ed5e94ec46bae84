// Hugging Face Hub downloads into the standard cache (HF_HOME/hub, shared with huggingface_hub):
// repos--owner--name/{refs/<revision>, blobs/<etag>, snapshots/<commit>/<path> → ../../blobs/<etag>}.
// The Hub API (revision → commit, file listing with sizes and hashes) goes through @huggingface/hub;
// the file transfer is ours because it must resume an interrupted download (HTTP Range on
// `<blob>.incomplete`) and verify every byte: LFS files against their sha256, small files against
// their git blob sha1. Honours HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE.

import { datasetInfo, listFiles, modelInfo } from "@huggingface/hub";
import { createHash } from "node:crypto";

export type RepoType = "model" | "dataset";

export interface HubConfig {
  endpoint: string;
  token?: string;
  /** The hub cache folder (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir: string;
  offline: boolean;
}

/** HF_HOME, else XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: (k: string) => string | undefined = (k) => Deno.env.get(k)): string {
  return env("HF_HOME") ?? `${env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`}/huggingface`;
}

export function hubConfig(env: (k: string) => string | undefined = (k) => Deno.env.get(k)): HubConfig {
  const home = hfHome(env);
  const off = env("HF_HUB_OFFLINE") ?? "";
  return {
    endpoint: (env("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/+$/, ""),
    token: env("HF_TOKEN") || undefined,
    cacheDir: env("HF_HUB_CACHE") ?? `${home}/hub`,
    offline: ["1", "true", "yes", "on"].includes(off.toLowerCase()),
  };
}

/** A Hub repo id: "name" or "owner/name", each part [A-Za-z0-9._-]. */
export function isRepoId(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/.test(s) && !s.includes("..");
}

export interface Snapshot {
  repo: string;
  type: RepoType;
  /** The commit the files come from. */
  commit: string;
  dir: string;
  files: { path: string; size: number; etag: string }[];
}

export interface SnapshotOptions {
  type?: RepoType;
  revision?: string;
  /** Which repo paths to fetch (default all). */
  allow?: (path: string) => boolean;
  /** Given every allowed path of the listing, the ones to fetch (safetensors or .bin, never both). */
  choose?: (paths: string[]) => string[];
  /** List only this folder of the repo (C4's repo has tens of thousands of files). */
  under?: string;
  config?: HubConfig;
  log?: (msg: string) => void;
}

const repoFolder = (type: RepoType, repo: string) => `${type}s--${repo.replaceAll("/", "--")}`;

/** Download (or find in the cache) the files of a repo at a revision; returns the snapshot folder. */
export async function snapshot(repo: string, o: SnapshotOptions = {}): Promise<Snapshot> {
  const type = o.type ?? "model";
  const cfg = o.config ?? hubConfig();
  const revision = o.revision ?? "main";
  const allow = o.allow ?? (() => true);
  if (!isRepoId(repo)) throw new Error(`"${repo}" is neither a local folder nor a Hub repo id (owner/name)`);
  const store = `${cfg.cacheDir}/${repoFolder(type, repo)}`;
  const what = `${type} ${repo}@${revision}`;

  let commit: string;
  let files: { path: string; size: number; etag: string; lfs: boolean }[];
  try {
    if (cfg.offline) throw new Error("HF_HUB_OFFLINE is set");
    const creds = { hubUrl: cfg.endpoint, ...(cfg.token ? { accessToken: cfg.token } : {}) };
    const info = type === "model"
      ? await modelInfo({ name: repo, revision, additionalFields: ["sha"], ...creds })
      : await datasetInfo({ name: repo, revision, additionalFields: ["sha"], ...creds });
    commit = (info as { sha?: string }).sha ?? "";
    if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`the Hub returned no commit for ${what}`);
    files = [];
    for await (
      const f of listFiles({
        repo: { type, name: repo },
        revision: commit,
        recursive: true,
        path: o.under,
        ...creds,
      })
    ) {
      if (f.type !== "file" || !allow(f.path)) continue;
      files.push({
        path: f.path,
        size: f.lfs?.size ?? f.size,
        etag: f.lfs?.oid ?? f.oid ?? "",
        lfs: !!f.lfs,
      });
      if (!files.at(-1)!.etag) throw new Error(`the Hub listed ${f.path} without a hash`);
    }
    if (o.choose) {
      const keep = new Set(o.choose(files.map((f) => f.path)));
      files = files.filter((f) => keep.has(f.path));
    }
  } catch (e) {
    // Offline, or the Hub unreachable: a complete snapshot already in the cache still serves.
    const cached = await cachedSnapshot(store, revision, allow);
    if (cached) return { repo, type, ...cached };
    throw new Error(
      `cannot get ${what} from the Hub at ${cfg.endpoint} (${hubError(e)}), and it is not in the cache ` +
        `${cfg.cacheDir}; pass a local folder, or check HF_ENDPOINT / HF_TOKEN`,
    );
  }
  if (!files.length) throw new Error(`${what}: no files to download (filter matched none)`);
  const dir = `${store}/snapshots/${commit}`;
  let done = 0;
  const total = files.reduce((s, f) => s + f.size, 0);
  for (const f of files) {
    if (f.path.split("/").some((p) => p === ".." || p === "")) {
      throw new Error(`${what}: unsafe path ${f.path}`);
    }
    const blob = `${store}/blobs/${f.etag}`;
    if (!(await exists(blob))) {
      const url = `${cfg.endpoint}/${type === "dataset" ? "datasets/" : ""}${repo}/resolve/${commit}/${
        f.path.split("/").map(encodeURIComponent).join("/")
      }`;
      await download(url, blob, f, cfg.token, (n) => {
        o.log?.(`  ${repo}/${f.path}: ${mb(done + n)} of ${mb(total)} MB`);
      });
    }
    done += f.size;
    const link = `${dir}/${f.path}`;
    await Deno.mkdir(link.slice(0, link.lastIndexOf("/")), { recursive: true });
    const depth = f.path.split("/").length + 1;
    await Deno.remove(link).catch(() => {});
    await Deno.symlink(`${"../".repeat(depth)}blobs/${f.etag}`, link);
  }
  if (revision !== commit) {
    const ref = `${store}/refs/${revision}`; // e.g. refs/main, refs/refs/convert/parquet
    await Deno.mkdir(ref.slice(0, ref.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(ref, commit);
  }
  // Our record of what a complete snapshot holds, for offline use (written last: present = complete).
  await Deno.writeTextFile(`${dir}/.quantlab-files.json`, JSON.stringify(files));
  return { repo, type, commit, dir, files: files.map(({ path, size, etag }) => ({ path, size, etag })) };
}

async function cachedSnapshot(store: string, revision: string, allow: (p: string) => boolean) {
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    try {
      commit = (await Deno.readTextFile(`${store}/refs/${revision}`)).trim();
    } catch {
      return null;
    }
  }
  const dir = `${store}/snapshots/${commit}`;
  try {
    const files = (JSON.parse(await Deno.readTextFile(`${dir}/.quantlab-files.json`)) as Snapshot["files"])
      .filter((f) => allow(f.path));
    for (const f of files) if (!(await exists(`${dir}/${f.path}`))) return null;
    return files.length ? { commit, dir, files } : null;
  } catch {
    return null;
  }
}

/**
 * GET `url` into `blob`, resuming from `blob.incomplete` with a Range request, then check the bytes
 * against the Hub's hash (sha256 for LFS files, git's blob sha1 otherwise) before the rename.
 */
async function download(
  url: string,
  blob: string,
  f: { path: string; size: number; etag: string; lfs: boolean },
  token: string | undefined,
  progress: (bytes: number) => void,
): Promise<void> {
  await Deno.mkdir(blob.slice(0, blob.lastIndexOf("/")), { recursive: true });
  const part = `${blob}.incomplete`;
  let have = (await Deno.stat(part).catch(() => null))?.size ?? 0;
  if (have > f.size) (await Deno.remove(part)), (have = 0);
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  if (have > 0) headers.Range = `bytes=${have}-`;
  let res: Response;
  try {
    res = await fetch(url, { headers });
  } catch (e) {
    throw new Error(`download of ${f.path} failed (${hubError(e)}); run again to resume`);
  }
  if (res.status === 416 && have === f.size) await res.body?.cancel();
  else {
    if (!(res.ok || res.status === 206)) {
      await res.body?.cancel();
      throw new Error(`download of ${f.path}: HTTP ${res.status} ${res.statusText} from ${url}`);
    }
    if (have > 0 && res.status !== 206) have = 0; // the server ignored the Range: start over
    const file = await Deno.open(part, { write: true, create: true, truncate: have === 0, append: have > 0 });
    let last = 0;
    try {
      for await (const chunk of res.body!) {
        for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
        have += chunk.length;
        if (have - last > 64 << 20) (last = have), progress(have);
      }
      await file.sync();
    } catch (e) {
      throw new Error(
        `download of ${f.path} broke off at ${have} of ${f.size} bytes (${hubError(e)}); run again to resume`,
      );
    } finally {
      file.close();
    }
  }
  const digest = await hashFile(part, f.lfs ? "sha256" : "sha1", f.lfs ? null : f.size);
  if (digest !== f.etag) {
    await Deno.remove(part);
    throw new Error(
      `download of ${f.path}: checksum mismatch (got ${digest}, the Hub says ${f.etag}); removed`,
    );
  }
  await Deno.rename(part, blob);
}

/** sha256 of the bytes, or with `gitSize` git's blob id: sha1("blob <size>\0" + bytes). */
export async function hashFile(
  path: string,
  algo: "sha256" | "sha1",
  gitSize: number | null,
): Promise<string> {
  const h = createHash(algo);
  if (gitSize !== null) h.update(`blob ${gitSize}\0`);
  const f = await Deno.open(path);
  for await (const chunk of f.readable) h.update(chunk); // the stream closes the file at its end
  return h.digest("hex");
}

function hubError(e: unknown): string {
  const err = e as { message?: string; cause?: { message?: string }; statusCode?: number };
  return [err.statusCode ? `HTTP ${err.statusCode}` : "", err.message ?? String(e), err.cause?.message ?? ""]
    .filter(Boolean).join(": ");
}

const mb = (n: number) => (n / 1e6).toFixed(1);

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}
