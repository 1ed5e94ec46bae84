// The cross-check Python the benchmarks call for torch / lm-eval columns beside ours:
// QUANTLAB_PYTHON, the project's .venv, else python3 (quantlab itself never needs Python).

/** stdout of `python -c script args…` from the first interpreter that runs it, or null. */
export async function runCrossCheck(script: string, args: string[]): Promise<string | null> {
  for (const exe of [Deno.env.get("QUANTLAB_PYTHON"), ".venv/bin/python", "python3"]) {
    if (!exe) continue;
    try {
      const r = await new Deno.Command(exe, {
        args: ["-c", script, ...args],
        stdout: "piped",
        stderr: "null",
      })
        .output();
      if (r.success) return new TextDecoder().decode(r.stdout);
    } catch {
      // not this interpreter
    }
  }
  return null;
}
