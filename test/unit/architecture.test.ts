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

describe("the published package", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> }
  /** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
  const packageOf = (spec: string) => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/")
  // a package specifier (the import regex also meets prose in comments, e.g. "… from \"heat at `now`\"")
  const bare = (spec: string) => /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w./-]*)?$/.test(spec) && !spec.startsWith("node:")
  const shipped = ["storage", "folds", "transfer", "plugin", "cli"].flatMap((layer) => files(join(ROOT, layer)))

  it("imports at run time only what it declares as dependencies", () => {
    const undeclared = shipped.flatMap((f) =>
      importsOf(f)
        .filter(bare)
        .filter((spec) => !(packageOf(spec) in pkg.dependencies))
        .map((spec) => `${relative(ROOT, f)} -> ${spec}`),
    )
    expect(undeclared).toEqual([])
  })

  it("the rule sees a dev-only import (it can fail)", () => {
    expect(packageOf("@nats-io/jetstream/internal") in pkg.dependencies).toBe(false)
    expect(packageOf("effect/Schema") in pkg.dependencies).toBe(true)
  })
})
