// Evaluation text from a local file: read as UTF-8, used as-is (not re-joined), with its sha256
// for provenance. Hub datasets (wikitext2, c4, ptb) join the harness later.

export interface EvalText {
  name: string;
  text: string;
  sha256: string;
}

export async function readEvalText(path: string): Promise<EvalText> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`dataset ${path}: cannot read (${(e as Error).message})`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`dataset ${path}: not valid UTF-8`);
  }
  if (!text.trim()) throw new Error(`dataset ${path}: the text is empty`);
  return { name: path, text, sha256: await sha256Hex(bytes) };
}

/** Hex sha256 of bytes (what rows record for a text). */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}
