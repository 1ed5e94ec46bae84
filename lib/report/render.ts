// Vega-Lite spec → SVG → PNG, deterministic across machines: vega-lite compiles the spec, vega's
// headless View renders the SVG, resvg rasterizes it with the DejaVu fonts shipped from npm and
// system fonts off (resvg drops text silently when it finds no font; platform.md §5).

import { compile, type TopLevelSpec } from "vega-lite";
import { parse, View } from "vega";
import { Resvg } from "@resvg/resvg-js";
import sans from "dejavu-fonts-ttf/ttf/DejaVuSans.ttf" with { type: "bytes" };
import sansBold from "dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf" with { type: "bytes" };

/** The SVG of a Vega-Lite spec (throws with vega-lite's message on an invalid spec). */
export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const vg = compile(spec).spec;
  const view = new View(parse(vg), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A PNG at `scale` × the SVG's size on a white background. */
export function toPng(svg: string, scale = 2): Uint8Array {
  const r = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    // fontBuffers works in resvg-js 2.6 (missing from its typings).
    font: {
      ...({ fontBuffers: [sans, sansBold] } as Record<string, unknown>),
      loadSystemFonts: false,
      defaultFontFamily: "DejaVu Sans",
      sansSerifFamily: "DejaVu Sans",
    },
  });
  return r.render().asPng();
}
