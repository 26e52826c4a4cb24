import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { atomicSwapAvailable, type ExchangeFn, parkedSibling, recoverDest, swapInto, tempSibling } from "../../plugin/dir-swap.ts"
import { tempDir } from "../support/temp.ts"

/** An exchange that fails like the addon does: an Error whose `code` is the errno name (or `E<n>`). */
function failing(code: string): ExchangeFn & { calls: number } {
  const fn = Object.assign(
    () => {
      fn.calls++
      throw Object.assign(new Error(`exchange refused (${code})`), { code })
    },
    { calls: 0 },
  )
  return fn
}

describe("directory swap", () => {
  let tmp: { path: string; remove(): Promise<void> }
  let dest: string
  beforeEach(async () => {
    tmp = await tempDir()
    dest = join(tmp.path, "tree")
  })
  afterEach(async () => tmp.remove())

  /** `dest` holding an old tree, and a complete new tree in a temp sibling. */
  async function oldAndNew(): Promise<string> {
    await mkdir(join(dest, "sub"), { recursive: true })
    await writeFile(join(dest, "f"), "old")
    await writeFile(join(dest, "sub", "only-old"), "x")
    const next = tempSibling(dest)
    await mkdir(next)
    await writeFile(join(next, "f"), "new")
    return next
  }

  async function expectTree(which: "old" | "new") {
    expect(await readFile(join(dest, "f"), "utf8")).toBe(which)
    expect((await readdir(dest)).sort()).toEqual(which === "old" ? ["f", "sub"] : ["f"])
    expect(await readdir(tmp.path)).toEqual(["tree"])
  }

  // npm ≥ 11.19 skips install scripts that package.json's allowScripts does not approve;
  // then the addon silently never builds and fetchDir loses its one-syscall swap
  it.runIf(process.platform === "linux")("has the native renameat2 exchange built and loaded on Linux", () => {
    expect(atomicSwapAvailable).toBe(true)
  })

  it("replaces an existing tree with the new one and leaves no sibling behind", async () => {
    await swapInto(await oldAndNew(), dest)
    await expectTree("new")
  })

  it("renames the new tree into place when there is no dest", async () => {
    const next = tempSibling(dest)
    await mkdir(next)
    await writeFile(join(next, "f"), "new")
    await swapInto(next, dest, { exchange: failing("EACCES") })
    expect(await readFile(join(dest, "f"), "utf8")).toBe("new")
    expect(await readdir(tmp.path)).toEqual(["tree"])
  })

  it("with no addon, swaps with two renames and leaves no sibling behind", async () => {
    await swapInto(await oldAndNew(), dest, { exchange: null })
    await expectTree("new")
  })

  // the addon names ENOSYS, EINVAL, EXDEV and writes other errnos as E<n>: E1 is EPERM, E95 EOPNOTSUPP
  it.each(["EINVAL", "ENOSYS", "EXDEV", "ENOTSUP", "EOPNOTSUPP", "EPERM", "E1", "E95"])("falls back to two renames when the exchange is refused with %s", async (code) => {
    const exchange = failing(code)
    await swapInto(await oldAndNew(), dest, { exchange })
    expect(exchange.calls).toBe(1)
    await expectTree("new")
  })

  it("stops trying an exchange that answered ENOSYS, and keeps trying one that answered EINVAL", async () => {
    const nosys = failing("ENOSYS")
    const inval = failing("EINVAL")
    for (let i = 0; i < 3; i++) {
      await swapInto(await oldAndNew(), dest, { exchange: nosys })
      await rm(dest, { recursive: true })
      await swapInto(await oldAndNew(), dest, { exchange: inval })
      await expectTree("new")
      await rm(dest, { recursive: true })
    }
    expect(nosys.calls).toBe(1)
    expect(inval.calls).toBe(3)
  })

  it.each([
    ["EACCES", "EACCES"],
    ["E13", "EACCES"],
    ["ENOENT", "ENOENT"],
    ["E28", "ENOSPC"],
  ])("surfaces an exchange error %s as a Node-style errno error (%s) and leaves dest the old tree", async (thrown, code) => {
    const next = await oldAndNew()
    const err = await swapInto(next, dest, { exchange: failing(thrown) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    expect(err).toMatchObject({ code, syscall: "renameat2", path: next, dest })
    expect((err as NodeJS.ErrnoException).errno).toBeLessThan(0)
    expect(await readFile(join(dest, "f"), "utf8")).toBe("old")
    // the caller (fetchDir) clears the temp tree
    await recoverDest(dest)
    await expectTree("old")
  })

  it("surfaces an exchange error without an errno code as it is", async () => {
    const boom = new Error("boom")
    const next = await oldAndNew()
    await expect(
      swapInto(next, dest, {
        exchange: () => {
          throw boom
        },
      }),
    ).rejects.toBe(boom)
  })

  it("puts the old tree straight back when the second rename fails", async () => {
    await oldAndNew()
    const missing = tempSibling(dest)
    await expect(swapInto(missing, dest, { exchange: null })).rejects.toMatchObject({ code: "ENOENT" })
    expect((await readdir(tmp.path)).filter((n) => n !== "tree").every((n) => n.includes(".df-tmp-"))).toBe(true)
    await recoverDest(dest)
    await expectTree("old")
  })

  it("recovers a kill between the two renames: the parked old tree goes back to dest and the temp tree goes", async () => {
    // what a two-rename swap killed after its first rename leaves
    const next = await oldAndNew()
    const parked = parkedSibling(dest)
    await rename(dest, parked)
    expect((await readdir(tmp.path)).sort()).toEqual([parked, next].map((p) => p.slice(tmp.path.length + 1)).sort())
    await recoverDest(dest)
    await expectTree("old")
  })

  it("recovers a kill after the second rename: dest is the new tree and the parked old tree is removed", async () => {
    // what a two-rename swap killed after its second rename, halfway through removing the parked tree, leaves
    const next = await oldAndNew()
    const parked = parkedSibling(dest)
    await rename(dest, parked)
    await rename(next, dest)
    await rm(join(parked, "f"))
    await recoverDest(dest)
    await expectTree("new")
  })

  it("recovers a kill before the swap: dest stays the old tree and the partial temp tree goes", async () => {
    const next = await oldAndNew()
    await writeFile(join(next, "partial"), "half")
    await recoverDest(dest)
    await expectTree("old")
  })
})
