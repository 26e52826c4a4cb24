#!/usr/bin/env node
// Builds the optional C addons (native/*) with node-gyp and copies each binary to
// native/<name>/prebuilds/<platform>-<arch>/, where the package loads it from (plugin/native-addon.ts).
// Run by `prepare` (so `npm pack` ships the binaries and users need no compiler) and never fails:
// without a compiler the package runs on its fallbacks. DATAFORTS_NO_NATIVE_BUILD=1 skips it.
import { spawnSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const native = join(root, "native")

function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp
  // npm ships node-gyp; find it next to the npm that runs us, or in the project
  for (const base of [process.env.npm_execpath && join(dirname(process.env.npm_execpath), ".."), root].filter(Boolean)) {
    try {
      return createRequire(join(base, "package.json")).resolve("node-gyp/bin/node-gyp.js")
    } catch {}
  }
  return undefined
}

if (process.env.DATAFORTS_NO_NATIVE_BUILD === "1") process.exit(0)
const gyp = nodeGyp()
for (const name of readdirSync(native)) {
  const dir = join(native, name)
  if (!existsSync(join(dir, "binding.gyp"))) continue
  if (!gyp) {
    console.log(`dataforts: node-gyp not found; ${name} not built (its fallback is used)`)
    continue
  }
  const run = spawnSync(process.execPath, [gyp, "rebuild"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 })
  const release = join(dir, "build", "Release")
  const binary = existsSync(release) ? readdirSync(release).find((f) => f.endsWith(".node")) : undefined
  if (run.status !== 0 || binary === undefined) {
    const why = (run.stderr?.toString() ?? "").trim().split("\n").filter(Boolean).pop() ?? run.error?.message ?? `exit ${run.status}`
    console.log(`dataforts: ${name} not built (${why}); its fallback is used`)
    continue
  }
  const out = join(dir, "prebuilds", `${process.platform}-${process.arch}`)
  mkdirSync(out, { recursive: true })
  // copy, then rename over: a running process may have the old binary mapped, and rewriting
  // that file in place would change the code under it
  copyFileSync(join(release, binary), join(out, `${binary}.tmp`))
  renameSync(join(out, `${binary}.tmp`), join(out, binary))
  console.log(`dataforts: built ${name} (${process.platform}-${process.arch})`)
}
