import { randomBytes } from "node:crypto"
import { readdir, rename, rm, stat } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { loadAddon } from "./native-addon.ts"

/**
 * Linux renameat2(RENAME_EXCHANGE) through our tiny addon (native/rename-exchange): no npm
 * package offers it and Node's fs cannot swap two directories atomically. Undefined when the
 * addon did not build; then a two-rename swap is used, whose one gap (the old tree parked
 * under a backup name) is healed by `recoverDest` on the next call.
 */
const exchange = loadAddon<{ exchange: (a: string, b: string) => void }>("rename-exchange")?.exchange

export const atomicSwapAvailable = exchange !== undefined

/** Names of our siblings of `dest`: the temp tree being built and the parked old tree. */
function siblingPrefix(dest: string, what: "tmp" | "old"): string {
  return `.${basename(dest)}.df-${what}-`
}

/** A fresh temp folder path beside `dest` (same filesystem, so rename is atomic). */
export function tempSibling(dest: string): string {
  return join(dirname(dest), `${siblingPrefix(dest, "tmp")}${randomBytes(6).toString("hex")}`)
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/**
 * Heals what a killed fetchDir left: an old tree parked by the fallback swap goes back to
 * `dest` if `dest` is missing (else it is removed), and temp trees are removed.
 */
export async function recoverDest(dest: string): Promise<void> {
  const parent = dirname(dest)
  let names: string[]
  try {
    names = await readdir(parent)
  } catch {
    return
  }
  const tmp = siblingPrefix(dest, "tmp")
  const old = siblingPrefix(dest, "old")
  for (const name of names.filter((n) => n.startsWith(old))) {
    if (!(await exists(dest))) await rename(join(parent, name), dest)
    else await rm(join(parent, name), { recursive: true, force: true })
  }
  for (const name of names.filter((n) => n.startsWith(tmp))) await rm(join(parent, name), { recursive: true, force: true })
}

/**
 * Puts the complete tree at `tmp` in place of `dest`. With no `dest`, one rename. With a
 * `dest`, an atomic exchange (then the old tree, now at `tmp`, is removed); at every moment
 * `dest` is the old tree or the new one.
 */
export async function swapInto(tmp: string, dest: string): Promise<void> {
  if (!(await exists(dest))) {
    await rename(tmp, dest)
    return
  }
  if (exchange) {
    exchange(tmp, dest)
    await rm(tmp, { recursive: true, force: true })
    return
  }
  const parked = join(dirname(dest), `${siblingPrefix(dest, "old")}${randomBytes(6).toString("hex")}`)
  await rename(dest, parked)
  await rename(tmp, dest)
  await rm(parked, { recursive: true, force: true })
}
