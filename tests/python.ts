// Python for cross-checks only: files written by Python's safetensors, ids from Python's
// tokenizers. .ci/python-setup installs them into .venv from the local pip mirror. Tests that need
// Python are ignored (and counted as skipped) where it is missing, never faked.

const CANDIDATES = [Deno.env.get("QUANTLAB_PYTHON"), ".venv/bin/python", "python3"].filter(
  Boolean,
) as string[];

async function probe(exe: string): Promise<boolean> {
  try {
    const r = await new Deno.Command(exe, {
      args: ["-c", "import safetensors, tokenizers, numpy"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

let found: string | null | undefined;
export async function python(): Promise<string | null> {
  if (found === undefined) {
    found = null;
    for (const c of CANDIDATES) {
      if (await probe(c)) {
        found = c;
        break;
      }
    }
    if (!found) {
      console.error("python with safetensors, tokenizers and numpy not found: cross-check tests are skipped");
    }
  }
  return found;
}

/** Run a Python script (stdin) with args; returns stdout, throws with stderr on failure. */
export async function runPython(script: string, args: string[] = []): Promise<string> {
  const exe = await python();
  if (!exe) throw new Error("python unavailable");
  const p = new Deno.Command(exe, { args: ["-", ...args], stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const r = await p.output();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`python failed: ${err}`);
  return new TextDecoder().decode(r.stdout);
}

/** Whether the cross-check Python imports `modules` (e.g. "lm_eval.api.task, datasets"); false without Python. */
export async function pythonHas(modules: string): Promise<boolean> {
  const exe = await python();
  if (!exe) return false;
  const r = await new Deno.Command(exe, { args: ["-c", `import ${modules}`], stdout: "null", stderr: "null" })
    .output();
  return r.success;
}

export const FIXTURES = new URL("../../shared/fixtures/", import.meta.url).pathname;
