// A read-only zip directory, as torch.save (≥ 1.6) writes its archives: entries stored without
// compression, ZIP64 records when an entry or the archive passes 4 GiB. Only the directory is read
// at open; an entry's bytes are read by offset when asked for, so a 10 GB shard costs a few KB of
// memory until a tensor is needed.
//
// Layout read (APPNOTE.TXT): end-of-central-directory record (EOCD, at the end, after an optional
// comment) → [ZIP64 EOCD locator → ZIP64 EOCD] → central directory (one header per entry, with
// the local header's offset) → local header (30 bytes + name + extra) → the entry's bytes.

export class ZipError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = "ZipError";
  }
}

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed, which torch never writes. */
  method: number;
  size: number;
  compressedSize: number;
  /** Offset of the local file header; the data offset is found from it on first use. */
  localOffset: number;
}

const SIG_EOCD = 0x06054b50, SIG_Z64_LOC = 0x07064b50, SIG_Z64_EOCD = 0x06064b50;
const SIG_CEN = 0x02014b50, SIG_LOC = 0x04034b50;
const U32_MAX = 0xffffffff, U16_MAX = 0xffff;

/** Read exactly n bytes at pos; `onShort` builds the error when the file ends first. */
export async function readAt(
  f: Deno.FsFile,
  pos: number,
  n: number,
  onShort: (at: number) => Error,
): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(new ArrayBuffer(n));
  await f.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < n) {
    const r = await f.read(buf.subarray(got));
    if (r === null) throw onShort(pos + got);
    got += r;
  }
  return buf;
}

const u64 = (v: DataView, at: number) => Number(v.getBigUint64(at, true));

export class ZipFile {
  private dataOffsets = new Map<string, number>();
  private constructor(
    readonly path: string,
    readonly size: number,
    readonly entries: Map<string, ZipEntry>,
  ) {}

  static async open(path: string): Promise<ZipFile> {
    const f = await Deno.open(path, { read: true });
    try {
      const size = (await f.stat()).size;
      const short = (at: number) => new ZipError(path, `truncated: unexpected end of file at byte ${at}`);
      // The EOCD is 22 bytes plus a comment of at most 64 KiB: search that tail backwards.
      const tailLen = Math.min(size, 22 + U16_MAX);
      const tail = await readAt(f, size - tailLen, tailLen, short);
      const tv = new DataView(tail.buffer);
      let e = -1;
      for (let i = tailLen - 22; i >= 0; i--) {
        if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) === tailLen) {
          e = i;
          break;
        }
      }
      if (e < 0) {
        throw new ZipError(path, "not a zip archive, or truncated (no end-of-central-directory record)");
      }
      let count = tv.getUint16(e + 10, true);
      let cdSize = tv.getUint32(e + 12, true);
      let cdOffset = tv.getUint32(e + 16, true);
      if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
        const loc = e - 20;
        if (loc < 0 || tv.getUint32(loc, true) !== SIG_Z64_LOC) {
          throw new ZipError(path, "ZIP64 archive without its end-of-central-directory locator");
        }
        const z64At = u64(tv, loc + 8);
        const z = new DataView((await readAt(f, z64At, 56, short)).buffer);
        if (z.getUint32(0, true) !== SIG_Z64_EOCD) {
          throw new ZipError(path, "bad ZIP64 end-of-central-directory");
        }
        count = u64(z, 32);
        cdSize = u64(z, 40);
        cdOffset = u64(z, 48);
      }
      if (cdOffset + cdSize > size) {
        throw new ZipError(
          path,
          `truncated: the central directory ends at byte ${cdOffset + cdSize} of a ${size}-byte file`,
        );
      }
      const cd = await readAt(f, cdOffset, cdSize, short);
      const v = new DataView(cd.buffer);
      const entries = new Map<string, ZipEntry>();
      const dec = new TextDecoder();
      let at = 0;
      for (let k = 0; k < count; k++) {
        if (at + 46 > cdSize || v.getUint32(at, true) !== SIG_CEN) {
          throw new ZipError(path, `central directory entry ${k} is damaged`);
        }
        const nameLen = v.getUint16(at + 28, true), extraLen = v.getUint16(at + 30, true);
        const commentLen = v.getUint16(at + 32, true);
        const name = dec.decode(cd.subarray(at + 46, at + 46 + nameLen));
        let compressedSize = v.getUint32(at + 20, true), sz = v.getUint32(at + 24, true);
        let localOffset = v.getUint32(at + 42, true);
        // ZIP64 extra field (id 1): the 64-bit values of exactly those fields that read 0xFFFFFFFF.
        for (let x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen;) {
          const id = v.getUint16(x, true), len = v.getUint16(x + 2, true);
          if (id === 1) {
            let p = x + 4;
            if (sz === U32_MAX) (sz = u64(v, p)), (p += 8);
            if (compressedSize === U32_MAX) (compressedSize = u64(v, p)), (p += 8);
            if (localOffset === U32_MAX) localOffset = u64(v, p);
          }
          x += 4 + len;
        }
        entries.set(name, {
          name,
          method: v.getUint16(at + 10, true),
          size: sz,
          compressedSize,
          localOffset,
        });
        at += 46 + nameLen + extraLen + commentLen;
      }
      return new ZipFile(path, size, entries);
    } finally {
      f.close();
    }
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new ZipError(this.path, `no entry ${name}`);
    return e;
  }

  /** Offset of the entry's bytes in the file, checked to be stored and to lie inside the file. */
  async dataOffset(f: Deno.FsFile, e: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(e.name);
    if (known !== undefined) return known;
    if (e.method !== 0) {
      throw new ZipError(
        this.path,
        `entry ${e.name} is compressed (method ${e.method}); torch stores entries`,
      );
    }
    const short = (at: number) => new ZipError(this.path, `truncated inside entry ${e.name} (byte ${at})`);
    const h = new DataView((await readAt(f, e.localOffset, 30, short)).buffer);
    if (h.getUint32(0, true) !== SIG_LOC) throw new ZipError(this.path, `entry ${e.name}: bad local header`);
    const start = e.localOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
    if (start + e.size > this.size) {
      throw new ZipError(
        this.path,
        `truncated: entry ${e.name} needs bytes up to ${start + e.size}, the file has ${this.size}`,
      );
    }
    this.dataOffsets.set(e.name, start);
    return start;
  }

  /** Bytes [from, from + n) of an entry. */
  async read(name: string, from = 0, n?: number): Promise<Uint8Array<ArrayBuffer>> {
    const e = this.entry(name);
    const len = n ?? e.size - from;
    if (from + len > e.size) {
      throw new ZipError(this.path, `entry ${name} has ${e.size} bytes; asked for [${from}, ${from + len})`);
    }
    const f = await Deno.open(this.path, { read: true });
    try {
      const start = await this.dataOffset(f, e);
      return await readAt(f, start + from, len, (at) => new ZipError(this.path, `truncated at byte ${at}`));
    } finally {
      f.close();
    }
  }
}
