import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { type NativePart, nativeDisabled } from "../storage/format/native-switch.ts"

const require = createRequire(import.meta.url)

/** Our optional C helpers (native/<name>): each has a tested fallback when it is absent. */
export type AddonName = Exclude<NativePart, "blake-hash">

const FILES: Record<AddonName, string> = { "rename-exchange": "rename_exchange.node", "malloc-tune": "malloc_tune.node" }

/** Whether `DATAFORTS_NO_NATIVE` turns this addon off (storage/format/native-switch.ts). */
export function addonDisabled(name: AddonName, value?: string): boolean {
  return nativeDisabled(name, ...(value === undefined ? [] : [value]))
}

/**
 * The addon's binary for this platform, or undefined. Binaries are N-API (one build serves
 * every Node version) and ship in the package under `native/<name>/prebuilds/<platform>-<arch>/`
 * (built by scripts/build-native.mjs when the package is packed), so installing needs no compiler
 * and runs no install script. This file sits in `plugin/` from source and in `dist/plugin/`
 * when compiled, so the package root is one or two folders up.
 */
function addonPath(name: AddonName): string | undefined {
  const rel = `native/${name}/prebuilds/${process.platform}-${process.arch}/${FILES[name]}`
  for (const up of ["../", "../../"]) {
    const path = fileURLToPath(new URL(up + rel, import.meta.url))
    if (existsSync(path)) return path
  }
  return undefined
}

/** Loads an addon, or returns undefined when it is disabled, absent or fails to load (musl, another OS). */
export function loadAddon<T>(name: AddonName): T | undefined {
  if (addonDisabled(name)) return undefined
  const path = addonPath(name)
  if (path === undefined) return undefined
  try {
    return require(path) as T
  } catch {
    return undefined
  }
}
