import { mkdir, readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { atomicSwapAvailable, swapInto, tempSibling } from "../../plugin/dir-swap.ts"
import { tempDir } from "../support/temp.ts"

describe("directory swap", () => {
  // npm ≥ 11.19 skips install scripts that package.json's allowScripts does not approve;
  // then the addon silently never builds and fetchDir loses its one-syscall swap
  it.runIf(process.platform === "linux")("has the native renameat2 exchange built and loaded on Linux", () => {
    expect(atomicSwapAvailable).toBe(true)
  })

  it("replaces an existing tree with the new one and leaves no sibling behind", async () => {
    const tmp = await tempDir()
    try {
      const dest = join(tmp.path, "tree")
      await mkdir(dest)
      await writeFile(join(dest, "f"), "old")
      const next = tempSibling(dest)
      await mkdir(next)
      await writeFile(join(next, "f"), "new")
      await swapInto(next, dest)
      expect(await readFile(join(dest, "f"), "utf8")).toBe("new")
      expect(await readdir(tmp.path)).toEqual(["tree"])
    } finally {
      await tmp.remove()
    }
  })
})
