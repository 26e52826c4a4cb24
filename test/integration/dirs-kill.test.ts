import { watch } from "node:fs"
import { mkdir, readdir, writeFile } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { recoverDest } from "../../plugin/dir-swap.ts"
import { Blobs, fetchDir, storeDir } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { spawnTs } from "../support/child.ts"
import { seededRandom } from "../support/random.ts"
import { tempDir } from "../support/temp.ts"
import { describeTree, makeTree } from "../support/tree.ts"

const RUNS = 22
const FALLBACK_RUNS = 12
/** Seed of the fallback test's kill points; DF_KILL_SEED=<n> replays a run. */
const FALLBACK_SEED = Number(process.env.DF_KILL_SEED ?? 13)

async function bulkyTree(root: string, seed: number) {
  await makeTree(root, seed, false)
  await mkdir(join(root, "many"), { recursive: true })
  for (let i = 0; i < 150; i++) await writeFile(join(root, "many", `f${i}.txt`), `${seed}:${i}\n`.repeat(50))
  await writeFile(join(root, "large.bin"), seededBytes(12 << 20, seed))
}

/** A store holding two bulky trees, and `dest` (alone in `work`) materialized as the first. */
async function twoTrees(root: string) {
  const store = join(root, "store")
  const blobs = await Blobs.open({ dir: store })
  const refs: string[] = []
  const shapes: Array<Record<string, string>> = []
  for (const i of [0, 1]) {
    const t = join(root, `tree${"AB"[i]}`)
    await bulkyTree(t, i + 1)
    refs.push((await storeDir(blobs, t)).toString())
    shapes.push(await describeTree(t))
  }
  const work = join(root, "work")
  const dest = join(work, "dest")
  await fetchDir(blobs, refs[0]!, dest)
  await blobs.close()
  return { store, refs, shapes, work, dest }
}

describe("fetchDir killed at random moments (SIGKILL, child process)", () => {
  let tmp: { path: string; remove(): Promise<void> }
  beforeAll(async () => (tmp = await tempDir("df-dirkill-")))
  afterAll(async () => tmp.remove())

  it(`leaves dest as the old or the new tree, and the next call cleans up, over ${RUNS} runs`, async () => {
    const { store, refs, shapes, work, dest } = await twoTrees(tmp.path)

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
    expect((await readdir(work)).sort()).toEqual(["dest"])
    expect(await describeTree(dest)).toEqual(shapes[1 - current])
    // the kills landed on both sides of the swap at least once
    expect(outcomes.old).toBeGreaterThan(0)
    expect(outcomes.new).toBeGreaterThan(0)
  }, 300_000)
})

type SwapStep = "parked" | "renamed" | "cleaned"

/**
 * Watches the folder of `dest` (inotify) for the two-rename swap's steps as a child takes
 * them: the old tree parked beside dest (first rename), the new tree renamed to dest
 * (second rename), the parked tree removed. `reached(step)` resolves when the step is seen.
 */
function watchSwap(dest: string) {
  const parkedPrefix = `.${basename(dest)}.df-old-`
  const resolvers = new Map<SwapStep, () => void>()
  const reached = new Map<SwapStep, Promise<void>>()
  for (const step of ["parked", "renamed", "cleaned"] as const) reached.set(step, new Promise<void>((resolve) => resolvers.set(step, resolve)))
  let parked: string | undefined
  let renamed = false
  const watcher = watch(dirname(dest), (_event, name) => {
    if (!name) return
    if (parked === undefined) {
      if (name.startsWith(parkedPrefix)) {
        parked = name
        resolvers.get("parked")!()
      }
    } else if (!renamed) {
      if (name === basename(dest)) {
        renamed = true
        resolvers.get("renamed")!()
      }
    } else if (name === parked) resolvers.get("cleaned")!()
  })
  return { reached: (step: SwapStep) => reached.get(step)!, close: () => watcher.close() }
}

/**
 * The same kills with the rename-exchange addon off in the child (DATAFORTS_NO_NATIVE), so the
 * swap is the two-rename fallback: dest may be missing for a moment (the old tree parked
 * beside it), and recoverDest must turn every state a kill leaves into exactly one tree.
 */
describe("fetchDir with the addon off (two-rename swap) killed at random moments (SIGKILL, child process)", () => {
  const env = { DATAFORTS_NO_NATIVE: "rename-exchange" }
  let tmp: { path: string; remove(): Promise<void> }
  beforeAll(async () => (tmp = await tempDir("df-dirkill-fallback-")))
  afterAll(async () => tmp.remove())

  /** Spawns the worker with the addon off and checks that it really is off there. */
  async function fetchInChild(store: string, ref: string, dest: string) {
    const child = spawnTs("child-fetchdir.ts", [store, ref, dest], env)
    expect(await child.line((l) => l.startsWith("atomicSwap="))).toBe("atomicSwap=false")
    await child.line((l) => l === "ready")
    return child
  }

  it(`after recovery, dest is exactly the old or the new tree with nothing beside it, over ${FALLBACK_RUNS} runs (seed ${FALLBACK_SEED})`, async () => {
    const { store, refs, shapes, work, dest } = await twoTrees(tmp.path)
    const parkedPrefix = `.${basename(dest)}.df-old-`
    const random = seededRandom(FALLBACK_SEED)

    // each run's kill: a seeded delay after one of four moments, in turn: the new tree renamed
    // in (0-2 ms: while the parked old tree is removed), "ready" (a delay spread over a whole
    // fetch, so most land while the temp tree is built), the old tree parked (0-1 ms: between
    // the two renames or just after), the parked tree gone (0-2 ms: after the swap). A whole
    // fetch's length is how long the last run that got that far took from "ready" to its
    // second rename (the first run is one of those).
    const anchors = ["renamed", "ready", "parked", "cleaned"] as const
    let span = 0
    let current = 0
    const landed = { before: 0, gap: 0, cleanup: 0, after: 0, finished: 0 }
    const log: string[] = []
    for (let run = 0; run < FALLBACK_RUNS; run++) {
      const next = 1 - current
      const anchor = anchors[run % anchors.length]!
      const delay = anchor === "ready" ? random() * span : Math.floor(random() * (anchor === "parked" ? 2 : 3))
      const swap = watchSwap(dest)
      const child = await fetchInChild(store, refs[next]!, dest)
      const ready = performance.now()
      void swap.reached("renamed").then(() => (span = performance.now() - ready))
      if (anchor !== "ready") await Promise.race([swap.reached(anchor), child.exited])
      if (delay > 0) await sleep(delay)
      child.proc.kill("SIGKILL")
      await child.exited
      swap.close()
      if (child.proc.signalCode !== "SIGKILL") landed.finished++

      // right after the kill: one of four states, each with the tree recovery must leave
      const names = await readdir(work)
      const parkedNames = names.filter((n) => n.startsWith(parkedPrefix))
      expect(parkedNames.length).toBeLessThanOrEqual(1)
      const seen = names.includes("dest") ? JSON.stringify(await describeTree(dest)) : undefined
      const state =
        seen === undefined
          ? parkedNames.length === 1 ? "gap" : "lost"
          : seen === JSON.stringify(shapes[current])
            ? parkedNames.length === 0 ? "before" : "old-and-parked"
            : seen === JSON.stringify(shapes[next])
              ? parkedNames.length === 0 ? "after" : "cleanup"
              : "neither"
      expect(state, `run ${run} (kill ${delay.toFixed(1)} ms after ${anchor}): state after the kill (${names.join(", ")})`).toMatch(/^(before|gap|cleanup|after)$/)
      landed[state as "before" | "gap" | "cleanup" | "after"]++
      log.push(`${delay.toFixed(1)}ms after ${anchor}: ${state}`)

      // recovery: recoverDest; for the last run, a new fetchDir (here, in this process) of the tree the killed one was fetching
      const expected = run === FALLBACK_RUNS - 1 ? next : state === "before" || state === "gap" ? current : next
      if (run < FALLBACK_RUNS - 1) await recoverDest(dest)
      else {
        const blobs = await Blobs.open({ dir: store })
        await fetchDir(blobs, refs[next]!, dest)
        await blobs.close()
      }
      expect(await readdir(work), `run ${run} (${state}): siblings after recovery`).toEqual(["dest"])
      expect(await describeTree(dest), `run ${run} (${state}): tree after recovery`).toEqual(shapes[expected])
      current = expected
    }

    console.log(`fallback kills (seed ${FALLBACK_SEED}, ready to second rename ${span.toFixed(0)} ms): ${JSON.stringify(landed)}\n  ${log.join("\n  ")}`)
    // the kills landed before the swap, during it (between the renames or while the parked tree is removed) and after it
    expect(landed.before).toBeGreaterThan(0)
    expect(landed.gap + landed.cleanup).toBeGreaterThan(0)
    expect(landed.after).toBeGreaterThan(0)
  }, 90_000)
})
