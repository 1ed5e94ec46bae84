// `deno task notebooks [NB.ipynb...]`: execute the notebooks in place with notebooks/execute.py
// (outputs kept, figures written to results/notebooks/) and stamp each with the source hash its
// outputs were computed at, which tests/notebooks checks. Default: every notebooks/*.ipynb.

import { dirname, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { notebookSourceHash } from "./hash.ts";

const ROOT = resolve(dirname(fromFileUrl(import.meta.url)), "../..");

/** Python with jupyter_client and nbformat: QUANTLAB_PYTHON, the project's .venv, else python3. */
export async function notebookPython(): Promise<string | null> {
  for (const exe of [Deno.env.get("QUANTLAB_PYTHON"), `${ROOT}/.venv/bin/python`, "python3"]) {
    if (!exe) continue;
    try {
      const r = await new Deno.Command(exe, {
        args: ["-c", "import jupyter_client, nbformat"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (r.success) return exe;
    } catch {
      // not there
    }
  }
  return null;
}

/** PATH with the Deno running now first, so the project kernelspec's `deno` is this one. */
export function kernelEnv(extra: Record<string, string> = {}): Record<string, string> {
  const bin = dirname(Deno.execPath());
  return { PATH: `${bin}:${Deno.env.get("PATH") ?? ""}`, NO_COLOR: "1", ...extra };
}

if (import.meta.main) {
  const nbs = Deno.args.length
    ? Deno.args
    : [...Deno.readDirSync(`${ROOT}/notebooks`)].map((e) => e.name).filter((n) => n.endsWith(".ipynb")).sort()
      .map((n) => `${ROOT}/notebooks/${n}`);
  const py = await notebookPython();
  if (!py) {
    console.error("error: no Python with jupyter_client and nbformat (run .ci/python-setup)");
    Deno.exit(2);
  }
  for (const nb of nbs) {
    const r = await new Deno.Command(py, {
      // QUANTLAB_NB_TIMEOUT: seconds per notebook (execute.py's default otherwise), for slow machines.
      args: [
        `${ROOT}/notebooks/execute.py`,
        "--in-place",
        ...(Deno.env.get("QUANTLAB_NB_TIMEOUT") ? ["--timeout", Deno.env.get("QUANTLAB_NB_TIMEOUT")!] : []),
        nb,
      ],
      env: kernelEnv(),
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!r.success) {
      console.error(`error: ${nb} failed; its outputs were written but not stamped`);
      Deno.exit(1);
    }
    const json = JSON.parse(await Deno.readTextFile(nb));
    json.metadata.quantlab = { ...json.metadata.quantlab, source_hash: await notebookSourceHash(nb) };
    await Deno.writeTextFile(nb, JSON.stringify(json, null, 1) + "\n");
    console.error(`${nb}: stamped`);
  }
}
