import { afterEach, describe, expect, inject, it } from "vitest"
import { runWorkspace } from "../../examples/workspace.ts"
import { tempDir } from "../support/temp.ts"
import { describeTree } from "../support/tree.ts"

describe("examples/workspace", () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
  })

  it("the runner's checkout of the announced root ref is identical to the builder's tree", async () => {
    const work = await tempDir("df-ex-ws-")
    cleanups.push(work.remove)
    const summary = await runWorkspace({ natsUrl: inject("natsUrl"), workDir: work.path })
    const source = await describeTree(summary.source)
    expect(Object.keys(source).length).toBeGreaterThan(40)
    expect(await describeTree(summary.checkout)).toEqual(source)
    expect(summary.files).toBe(Object.values(source).filter((d) => d.startsWith("file")).length)
  })
})
