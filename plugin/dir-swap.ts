import { randomBytes } from "node:crypto"
import { chmod, readdir, rename, rm, stat } from "node:fs/promises"
import { constants } from "node:os"
import { basename, dirname, join } from "node:path"
import { loadAddon } from "./native-addon.ts"

/** Atomically swaps two paths (both must exist); throws an Error with an errno `code` when it cannot. */
export type ExchangeFn = (a: string, b: string) => void

/**
 * Linux renameat2(RENAME_EXCHANGE) through our tiny addon (native/rename-exchange): no npm
 * package offers it and Node's fs cannot swap two directories atomically. Undefined when the
 * addon did not build or is turned off (`DATAFORTS_NO_NATIVE`); then, and wherever the file
 * system refuses the exchange, a two-rename swap is used, whose one gap (the old tree parked
 * under a backup name) is healed by `recoverDest` on the next call.
 */
const addonExchange = loadAddon<{ exchange: ExchangeFn }>("rename-exchange")?.exchange

/**
 * The addon is loaded. It says nothing about a given file system: one that refuses the
 * exchange still gets the two-rename swap.
 */
export const atomicSwapAvailable = addonExchange !== undefined

/**
 * Errnos meaning "this kernel or file system cannot exchange these two paths", not "this
 * swap is wrong": EINVAL (a file system without RENAME_EXCHANGE: NFS, many FUSE ones), ENOSYS
 * (kernel older than 3.15, or a seccomp filter that hides renameat2), EXDEV (the two paths on
 * different mounts), ENOTSUP/EOPNOTSUPP, EPERM (what seccomp filters of older container
 * runtimes answer for a syscall they block). Each falls back to the two renames; where the
 * cause is real (a true EPERM or EXDEV), rename fails with it too and that error surfaces.
 */
const EXCHANGE_UNSUPPORTED = new Set(["EINVAL", "ENOSYS", "EXDEV", "ENOTSUP", "EOPNOTSUPP", "EPERM"])

/**
 * Exchange functions that answered ENOSYS, skipped from then on. Only ENOSYS is remembered:
 * it is the kernel's (or the process's seccomp filter's) answer and cannot change while the
 * process lives. The other errnos belong to one file system, and the next `dest` may be on
 * another that supports the exchange; a per-device memo would have to trust st_dev, which is
 * reused when file systems are unmounted and mounted, to save one failed syscall (a few
 * microseconds) per tree materialized, so they are simply tried again each time.
 */
const kernelLacksExchange = new WeakSet<ExchangeFn>()

const ERRNO_NAMES = new Map<number, string>()
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name)

/**
 * The errno name of a failed exchange. The addon names the common ones (ENOSYS, EINVAL, ENOENT,
 * EXDEV) and writes the rest as `E<number>` (EPERM is `E1`, EACCES `E13`).
 */
function errnoName(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== "string") return undefined
  const numeric = /^E(\d+)$/.exec(code)
  return numeric ? (ERRNO_NAMES.get(Number(numeric[1])) ?? code) : code
}

/** An exchange failure that is not "unsupported", shaped like Node's fs errors (`code`, `errno`, `syscall`, `path`, `dest`). */
function exchangeError(err: unknown, name: string | undefined, a: string, b: string): Error {
  if (name === undefined) return err instanceof Error ? err : new Error(String(err))
  const errno = (constants.errno as Record<string, number | undefined>)[name]
  const reason = err instanceof Error ? err.message : String(err)
  return Object.assign(new Error(`${name}: ${reason}, renameat2 '${a}' -> '${b}'`, { cause: err }), {
    code: name,
    ...(errno !== undefined ? { errno: -errno } : {}),
    syscall: "renameat2",
    path: a,
    dest: b,
  })
}

/** Names of our siblings of `dest`: the temp tree being built and the parked old tree. */
function siblingPrefix(dest: string, what: "tmp" | "old"): string {
  return `.${basename(dest)}.df-${what}-`
}

function sibling(dest: string, what: "tmp" | "old"): string {
  return join(dirname(dest), `${siblingPrefix(dest, what)}${randomBytes(6).toString("hex")}`)
}

/** A fresh temp folder path beside `dest` (same filesystem, so rename is atomic). */
export function tempSibling(dest: string): string {
  return sibling(dest, "tmp")
}

/** A fresh path beside `dest` where the two-rename swap parks the old tree (what `recoverDest` looks for). */
export function parkedSibling(dest: string): string {
  return sibling(dest, "old")
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
  for (const name of names.filter((n) => n.startsWith(tmp))) await removeTempTree(join(parent, name))
}

/**
 * Removes a temp tree. fetchDir closes a read-only directory as soon as its subtree is
 * written, so a half-built tree can hold directories a non-root owner cannot empty: when
 * rm is refused, every directory gets owner rwx back (links not followed) and rm runs again.
 */
async function removeTempTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true })
  } catch {
    await unlockDirs(path).catch(() => {})
    await rm(path, { recursive: true, force: true })
  }
}

async function unlockDirs(dir: string): Promise<void> {
  await chmod(dir, 0o700)
  for (const e of await readdir(dir, { withFileTypes: true })) if (e.isDirectory()) await unlockDirs(join(dir, e.name))
}

export interface SwapOptions {
  /**
   * The atomic exchange to try: by default the addon's (when loaded); `null` for none, so the
   * two-rename swap is used. For tests that force each path.
   */
  exchange?: ExchangeFn | null
}

/**
 * Puts the complete tree at `tmp` in place of `dest`. With no `dest`, one rename. With a
 * `dest`, an atomic exchange (then the old tree, now at `tmp`, is removed), so at every
 * moment `dest` is the old tree or the new one. Where there is no exchange, or the file
 * system refuses it (EINVAL, ENOSYS, EXDEV, ENOTSUP, EPERM), two renames: the old tree is
 * parked beside `dest`, the new one takes its name, the parked one is removed; a kill in
 * between leaves `dest` missing and the old tree parked, which `recoverDest` puts back.
 * Other exchange errors (ENOENT, EACCES, ENOSPC…) surface as errno errors like Node's fs ones.
 */
export async function swapInto(tmp: string, dest: string, options: SwapOptions = {}): Promise<void> {
  if (!(await exists(dest))) {
    await rename(tmp, dest)
    return
  }
  const exchange = options.exchange === undefined ? addonExchange : (options.exchange ?? undefined)
  if (exchange && !kernelLacksExchange.has(exchange)) {
    let refused = false
    try {
      exchange(tmp, dest)
    } catch (err) {
      const name = errnoName(err)
      if (name === undefined || !EXCHANGE_UNSUPPORTED.has(name)) throw exchangeError(err, name, tmp, dest)
      if (name === "ENOSYS") kernelLacksExchange.add(exchange)
      refused = true
    }
    if (!refused) {
      await rm(tmp, { recursive: true, force: true })
      return
    }
  }
  const parked = parkedSibling(dest)
  await rename(dest, parked)
  try {
    await rename(tmp, dest)
  } catch (err) {
    // not a crash: put the old tree straight back (if that fails too, recoverDest will)
    await rename(parked, dest).catch(() => {})
    throw err
  }
  await rm(parked, { recursive: true, force: true })
}
