// A minimal PNG decoder for tests (8-bit RGB/RGBA, non-interlaced): chunks, zlib inflate through
// DecompressionStream("deflate"), the five row filters. Independent of the renderer that wrote it.

export interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel. */
  rgba: Uint8Array;
}

export async function decodePng(png: Uint8Array): Promise<Image> {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!sig.every((b, i) => png[i] === b)) throw new Error("not a PNG (bad signature)");
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let off = 8, width = 0, height = 0, depth = 0, color = 0, interlace = 0;
  const idat: Uint8Array[] = [];
  while (off < png.length) {
    const len = dv.getUint32(off), type = new TextDecoder().decode(png.subarray(off + 4, off + 8));
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      [width, height] = [dv.getUint32(off + 8), dv.getUint32(off + 12)];
      [depth, color, interlace] = [data[8], data[9], data[12]];
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  if (depth !== 8 || (color !== 6 && color !== 2) || interlace) {
    throw new Error(`unsupported PNG: depth ${depth}, color ${color}, interlace ${interlace}`);
  }
  const bpp = color === 6 ? 4 : 3;
  const raw = new Uint8Array(
    await new Response(new Blob(idat as BlobPart[]).stream().pipeThrough(new DecompressionStream("deflate")))
      .arrayBuffer(),
  );
  const stride = width * bpp;
  if (raw.length !== height * (stride + 1)) {
    throw new Error(`PNG data is ${raw.length} bytes, expected ${height * (stride + 1)}`);
  }
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = f === 0
        ? 0
        : f === 1
        ? a
        : f === 2
        ? b
        : f === 3
        ? (a + b) >> 1
        : pa <= pb && pa <= pc
        ? a
        : pb <= pc
        ? b
        : c;
      px[y * stride + x] = (src[x] + pred) & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(px.subarray(i * bpp, i * bpp + 3), i * 4);
    rgba[i * 4 + 3] = bpp === 4 ? px[i * bpp + 3] : 255;
  }
  return { width, height, rgba };
}

/** Pixels that are not (near) white. */
export function inked(img: Image): number {
  let n = 0;
  for (let i = 0; i < img.rgba.length; i += 4) if (img.rgba[i] + img.rgba[i + 1] + img.rgba[i + 2] < 600) n++;
  return n;
}
