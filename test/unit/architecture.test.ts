import { readdirSync, readFileSync, existsSync } from "node:fs"
import { join, relative } from "node:path"
import { describe, expect, it } from "vitest"

/**
 * Imports each layer may NOT use. storage/format is the pure leaf; plugin is the
 * composition root and may import anything below it. folds never touch NATS or disk (the
 * plugin feeds them through a port they declare); transfer never reads folds.
 */
const FORBIDDEN: Record<string, RegExp[]> = {
  "storage/format": [/\/(storage\/(?!format)|folds|transfer|plugin|cli|examples|bench)\//, /^@nats-io\//, /^classic-level/, /^node:fs/],
  storage: [/\/(folds|transfer|plugin|cli|examples|bench)\//, /^@nats-io\//],
  folds: [/\/(storage\/(?!format)|transfer|plugin|cli|examples|bench)\//, /^@nats-io\//, /^classic-level/],
  transfer: [/\/(folds|plugin|cli|examples|bench)\//, /^classic-level/, /\/storage\/(?!format)/],
  plugin: [/\/(cli|examples|bench)\//],
}

const ROOT = join(import.meta.dirname, "../..")
const files = (dir: string): string[] =>
  !existsSync(dir)
    ? []
    : readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
      )
const importsOf = (file: string) =>
  [...readFileSync(file, "utf8").matchAll(/(?:^\s*(?:import|export)[^"']*from\s+|import\()\s*["']([^"']+)["']/gm)].map((m) => m[1]!)

describe.each(Object.entries(FORBIDDEN))("layer %s", (layer, rules) => {
  it("imports only what its layer allows", () => {
    const violations = files(join(ROOT, layer))
      .filter((f) => layer !== "storage" || !f.includes("/storage/format/"))
      .flatMap((f) =>
        importsOf(f)
          .map((spec) => (spec.startsWith(".") ? "/" + join(relative(ROOT, join(f, "..")), spec) : spec))
          .filter((spec) => rules.some((r) => r.test(spec)))
          .map((spec) => `${relative(ROOT, f)} -> ${spec}`),
      )
    expect(violations).toEqual([])
  })

  it("detects a planted violation (the rule can fail)", () => {
    const planted = layer === "plugin" ? "/cli/net-blob.ts" : layer === "storage/format" ? "@nats-io/nats-core" : "/plugin/blobs.ts"
    expect(rules.some((r) => r.test(planted))).toBe(true)
  })
})
