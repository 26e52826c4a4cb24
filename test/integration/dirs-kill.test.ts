import { mkdir, readdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Blobs, fetchDir, storeDir } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { spawnTs } from "../support/child.ts"
import { tempDir } from "../support/temp.ts"
import { describeTree, makeTree } from "../support/tree.ts"

const RUNS = 22

async function bulkyTree(root: string, seed: number) {
  await makeTree(root, seed, false)
  await mkdir(join(root, "many"), { recursive: true })
  for (let i = 0; i < 150; i++) await writeFile(join(root, "many", `f${i}.txt`), `${seed}:${i}\n`.repeat(50))
  await writeFile(join(root, "large.bin"), seededBytes(12 << 20, seed))
}

describe("fetchDir killed at random moments (SIGKILL, child process)", () => {
  let tmp: { path: string; remove(): Promise<void> }
  beforeAll(async () => (tmp = await tempDir("df-dirkill-")))
  afterAll(async () => tmp.remove())

  it(`leaves dest as the old or the new tree, and the next call cleans up, over ${RUNS} runs`, async () => {
    const store = join(tmp.path, "store")
    const blobs = await Blobs.open({ dir: store })
    const trees = [join(tmp.path, "treeA"), join(tmp.path, "treeB")]
    const refs: string[] = []
    const shapes = []
    for (const [i, t] of trees.entries()) {
      await bulkyTree(t, i + 1)
      refs.push((await storeDir(blobs, t)).toString())
      shapes.push(await describeTree(t))
    }
    const dest = join(tmp.path, "work", "dest")
    await fetchDir(blobs, refs[0]!, dest)
    await blobs.close()

    const outcomes = { old: 0, new: 0 }
    let current = 0
    for (let run = 0; run < RUNS; run++) {
      const next = 1 - current
      const child = spawnTs("child-fetchdir.ts", [store, refs[next]!, dest])
      await child.line((l) => l === "ready")
      await sleep(Math.floor(Math.random() * 400))
      child.proc.kill("SIGKILL")
      await child.exited
      // right after the kill: dest is one whole tree or the other, never neither, never a mix
      const seen = await describeTree(dest)
      const which = JSON.stringify(seen) === JSON.stringify(shapes[next]) ? "new" : JSON.stringify(seen) === JSON.stringify(shapes[current]) ? "old" : "neither"
      expect(which).not.toBe("neither")
      outcomes[which as "old" | "new"]++
      if (which === "new") current = next
    }
    // the next call removes every leftover sibling and completes
    const again = await Blobs.open({ dir: store })
    await fetchDir(again, refs[1 - current]!, dest)
    await again.close()
    expect((await readdir(join(tmp.path, "work"))).sort()).toEqual(["dest"])
    expect(await describeTree(dest)).toEqual(shapes[1 - current])
    // the kills landed on both sides of the swap at least once
    expect(outcomes.old).toBeGreaterThan(0)
    expect(outcomes.new).toBeGreaterThan(0)
  }, 300_000)
})
