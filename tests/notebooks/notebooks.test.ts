// The notebooks: every one executes headless on the fixtures (small parameters, a time limit each)
// with no cell error and no missing output; the committed outputs are not stale (source hash);
// the executor keeps every output over 20 repeated runs (nbclient loses some with the Deno
// kernel); a parameters cell pointing at a missing model shows a message, not a stack trace.

import assert from "node:assert";
import { notebookSourceHash } from "../../lib/notebook/hash.ts";
import { kernelEnv, notebookPython } from "../../lib/notebook/refresh.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const EXECUTE = `${ROOT}notebooks/execute.py`;
const NOTEBOOKS = [...Deno.readDirSync(`${ROOT}notebooks`)].map((e) => e.name).filter((n) =>
  n.endsWith(".ipynb")
)
  .sort();
const py = await notebookPython();
const ignore = !py;
if (ignore) console.error("python with jupyter_client and nbformat not found: notebook tests are skipped");

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  text?: string | string[];
}
interface Nb {
  cells: { cell_type: string; outputs?: Output[]; metadata: { tags?: string[] } }[];
  metadata: { quantlab?: { source_hash?: string } };
}
const readNb = async (p: string) => JSON.parse(await Deno.readTextFile(p)) as Nb;
const outputText = (o: Output) => {
  const t = o.text ?? (o.data?.["text/plain"] as string | string[] | undefined) ?? "";
  return Array.isArray(t) ? t.join("") : t;
};

async function execute(args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(py!, {
    args: [EXECUTE, ...args],
    env: kernelEnv(env),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
}

/** Small parameters for CI: a few short windows; figures into a temporary folder. */
const SMALL = {
  QUANTLAB_SEQLEN: "128",
  QUANTLAB_WINDOWS: "2",
  QUANTLAB_NSAMPLES: "4",
  QUANTLAB_CALIB_SEQLEN: "64",
};

Deno.test("committed notebooks carry outputs computed at the current code (deno task notebooks refreshes them)", async () => {
  assert.ok(NOTEBOOKS.length >= 9, NOTEBOOKS.join(", "));
  for (const name of NOTEBOOKS) {
    const path = `${ROOT}notebooks/${name}`;
    const nb = await readNb(path);
    const want = await notebookSourceHash(path);
    assert.strictEqual(
      nb.metadata.quantlab?.source_hash,
      want,
      `notebooks/${name}: outputs are stale (its cells or the code it runs changed): run \`deno task notebooks notebooks/${name}\``,
    );
    for (const [i, c] of nb.cells.entries()) {
      if (c.cell_type !== "code" || c.metadata.tags?.includes("no-output")) continue;
      assert.ok(c.outputs?.length, `notebooks/${name} cell ${i}: no committed output`);
      assert.ok(
        !c.outputs!.some((o) => o.output_type === "error"),
        `notebooks/${name} cell ${i}: an error is committed`,
      );
    }
  }
});

Deno.test({
  name: "every notebook executes headless on the fixtures within its time limit, outputs complete",
  ignore,
  fn: async () => {
    const out = await Deno.makeTempDir();
    const r = await execute(
      ["--timeout", "240", "--out-dir", out, ...NOTEBOOKS.map((n) => `${ROOT}notebooks/${n}`)],
      { ...SMALL, QUANTLAB_OUT: `${out}/figures` },
    );
    assert.strictEqual(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`notebooks: ${NOTEBOOKS.length} passed, 0 failed`));
    const quick = await readNb(`${out}/00-quickstart.ipynb`);
    const shown = quick.cells.flatMap((c) => c.outputs ?? []);
    assert.ok(
      shown.some((o) => o.data?.["application/vnd.vegalite.v5+json"] && o.data?.["image/png"]),
      "a Vega-Lite figure",
    );
    assert.ok(await Deno.stat(`${out}/figures/quickstart-ppl.png`));
  },
});

Deno.test({
  name: "the executor keeps every output over 20 repeated executions",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const probe = {
      cells: [
        {
          cell_type: "code",
          source: 'console.log("a"); console.log("b"); 6 * 7',
          metadata: {},
          outputs: [],
          execution_count: null,
        },
        {
          cell_type: "code",
          source: 'await Deno.jupyter.display({ "text/markdown": "**shown**" }, { raw: true });',
          metadata: {},
          outputs: [],
          execution_count: null,
        },
        {
          cell_type: "code",
          source: 'for (let i = 0; i < 5; i++) console.log("line", i);',
          metadata: {},
          outputs: [],
          execution_count: null,
        },
      ],
      metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
      nbformat: 4,
      nbformat_minor: 5,
    };
    const paths = [];
    for (let i = 0; i < 20; i++) {
      paths.push(`${dir}/probe${i}.ipynb`);
      await Deno.writeTextFile(paths[i], JSON.stringify(probe));
    }
    const r = await execute(["--out-dir", `${dir}/out`, ...paths]);
    assert.strictEqual(r.code, 0, r.out);
    for (let i = 0; i < 20; i++) {
      const nb = await readNb(`${dir}/out/probe${i}.ipynb`);
      const got = nb.cells.map((c) => c.outputs!.map(outputText).join("|"));
      // The display has no text/plain: its text is "" here, its Markdown is checked below.
      assert.deepStrictEqual(got, ["a\nb\n|42", "", "line 0\nline 1\nline 2\nline 3\nline 4\n"], `run ${i}`);
      assert.strictEqual(nb.cells[1].outputs?.length, 1, `run ${i}: the display`);
      assert.ok(nb.cells[1].outputs![0].data?.["text/markdown"], `run ${i}: the display's Markdown`);
    }
  },
});

Deno.test({
  name: "a parameters cell pointing at a missing model shows a clear message, not a stack trace",
  ignore,
  fn: async () => {
    const out = await Deno.makeTempDir();
    const r = await execute(
      ["--allow-errors", "--out-dir", out, `${ROOT}notebooks/00-quickstart.ipynb`],
      { ...SMALL, QUANTLAB_MODEL: "/nonexistent/model", QUANTLAB_OUT: out },
    );
    assert.strictEqual(r.code, 0, r.out);
    const nb = await readNb(`${out}/00-quickstart.ipynb`);
    const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
    assert.ok(!outputs.some((o) => o.output_type === "error"), "no traceback output");
    const text = outputs.map(outputText).join("\n");
    assert.match(
      text,
      /loading \/nonexistent\/model and .* failed: --model \/nonexistent\/model: no such folder/,
    );
    assert.match(text, /Skipped: FP perplexity/);
    assert.doesNotMatch(text, /at file:\/\/|\.ts:\d+:\d+/, "no stack frames");
  },
});
