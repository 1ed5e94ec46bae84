// safetensors: a streaming reader (tensors are read one at a time from their byte range; a
// multi-GB file is never held in memory) and a writer.
//
// Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end]}, "__metadata__"?: {str: str}}, then the data section. Offsets are relative to the
// data section. The header is validated before any tensor is read: size cap, known dtype, offsets
// in bounds, contiguous and non-overlapping, shape × dtype size = byte length.

import { z } from "zod";
import { writeFileAtomic } from "../provenance.ts";

export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;
export type SafeDType = keyof typeof DTYPE_BYTES;

/** Headers above this are refused (the Rust reference caps at 100 MB too). */
export const MAX_HEADER_BYTES = 100_000_000;

const Entry = z.object({
  dtype: z.enum(Object.keys(DTYPE_BYTES) as [SafeDType, ...SafeDType[]]),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
}).strict();
export type TensorInfo = z.infer<typeof Entry>;

export class SafetensorsError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = "SafetensorsError";
  }
}

export interface Header {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file (8 + header length). */
  dataStart: number;
}

/** Validate raw header JSON against the file size. Throws SafetensorsError naming file and tensor. */
export function parseHeader(file: string, json: string, headerLen: number, fileSize: number): Header {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(file, "header is not a JSON object");
  }
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name === "__metadata__") {
      const m = z.record(z.string(), z.string()).safeParse(value);
      if (!m.success) throw new SafetensorsError(file, "__metadata__ must map strings to strings");
      metadata = m.data;
      continue;
    }
    const r = Entry.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      const where = issue.path.join(".");
      const detail = where === "dtype"
        ? `unknown dtype ${JSON.stringify((value as { dtype?: unknown }).dtype)}`
        : `${where || "entry"}: ${issue.message}`;
      throw new SafetensorsError(file, `tensor ${name}: ${detail}`);
    }
    const t = r.data;
    const [begin, end] = t.data_offsets;
    if (begin > end) {
      throw new SafetensorsError(file, `tensor ${name}: data_offsets [${begin}, ${end}] are reversed`);
    }
    if (end > dataSize) {
      throw new SafetensorsError(
        file,
        `tensor ${name}: data ends at byte ${end} of the data section, but the file has only ${dataSize} data bytes (truncated?)`,
      );
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel * DTYPE_BYTES[t.dtype] !== end - begin) {
      throw new SafetensorsError(
        file,
        `tensor ${name}: shape [${t.shape}] × ${t.dtype} is ${numel * DTYPE_BYTES[t.dtype]} bytes, ` +
          `but data_offsets span ${end - begin}`,
      );
    }
    tensors.set(name, t);
  }
  // Contiguous and non-overlapping: sorted by start, each begins where the previous ended.
  const sorted = [...tensors.entries()].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let at = 0;
  for (const [name, t] of sorted) {
    const [begin, end] = t.data_offsets;
    if (begin < at) {
      throw new SafetensorsError(
        file,
        `tensor ${name}: bytes [${begin}, ${end}) overlap the previous tensor`,
      );
    }
    if (begin > at) {
      throw new SafetensorsError(
        file,
        `tensor ${name}: gap before byte ${begin} (previous data ends at ${at})`,
      );
    }
    at = end;
  }
  if (at !== dataSize) {
    throw new SafetensorsError(file, `data section has ${dataSize - at} bytes after the last tensor`);
  }
  return { tensors, metadata, dataStart };
}

/** An open safetensors file: header parsed and validated, tensors read on demand. */
export class SafetensorsFile {
  private constructor(readonly path: string, readonly header: Header, readonly size: number) {}

  static async open(path: string): Promise<SafetensorsFile> {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(path, { read: true });
    } catch (e) {
      throw new SafetensorsError(path, `cannot open: ${(e as Error).message}`);
    }
    try {
      const size = (await f.stat()).size;
      if (size < 8) throw new SafetensorsError(path, `file is ${size} bytes, too short for a header length`);
      const lenBuf = await readExact(f, 0, 8, path);
      const len = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (len > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(path, `header length ${len} exceeds the ${MAX_HEADER_BYTES}-byte cap`);
      }
      const headerLen = Number(len);
      if (8 + headerLen > size) {
        throw new SafetensorsError(
          path,
          `header length ${headerLen} runs past the end of the ${size}-byte file`,
        );
      }
      const json = new TextDecoder("utf-8", { fatal: true }).decode(await readExact(f, 8, headerLen, path));
      return new SafetensorsFile(path, parseHeader(path, json, headerLen, size), size);
    } finally {
      f.close();
    }
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(this.path, `no tensor named ${name}`);
    return t;
  }

  /** The raw bytes of one tensor (a fresh, aligned buffer). */
  async readBytes(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const t = this.info(name);
    const [begin, end] = t.data_offsets;
    const f = await Deno.open(this.path, { read: true });
    try {
      return await readExact(f, this.header.dataStart + begin, end - begin, this.path, name);
    } finally {
      f.close();
    }
  }
}

async function readExact(f: Deno.FsFile, pos: number, n: number, file: string, tensor?: string) {
  const buf = new Uint8Array(new ArrayBuffer(n));
  await f.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < n) {
    const r = await f.read(buf.subarray(got));
    if (r === null) {
      throw new SafetensorsError(
        file,
        `${tensor ? `tensor ${tensor}: ` : ""}unexpected end of file at byte ${pos + got}`,
      );
    }
    got += r;
  }
  return buf;
}

export interface TensorToWrite {
  name: string;
  dtype: SafeDType;
  shape: number[];
  data: ArrayBufferView;
}

/**
 * Write tensors to `path` atomically (temporary file + rename). The header is padded with spaces
 * to a multiple of 8 bytes, as Python's safetensors writes it, so the data section is aligned.
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new SafetensorsError(path, `tensor ${t.name} is given twice`);
    seen.add(t.name);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel * DTYPE_BYTES[t.dtype] !== t.data.byteLength) {
      throw new SafetensorsError(
        path,
        `tensor ${t.name}: shape [${t.shape}] × ${t.dtype} needs ${
          numel * DTYPE_BYTES[t.dtype]
        } bytes, got ${t.data.byteLength}`,
      );
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  const parts = [
    len,
    json,
    ...tensors.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ];
  await writeFileAtomic(path, parts);
}
