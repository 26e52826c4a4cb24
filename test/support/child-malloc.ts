/**
 * Churns chunk-sized buffers the way a read hands them out (allocated, filled, dropped, freed
 * by the GC in a batch) and reports page faults per MiB, with or without `tuneMalloc`; then
 * lets the process go quiet and reports its RSS before and after the memory was given back.
 *
 *   node --import tsx test/support/child-malloc.ts tuned|default
 *     → { tuned, faultsPerMiB, rssMiB, afterQuiet: { rssMiB, trims } }
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { allocatorStats, holdFreedMemoryWhileBusy, tuneMalloc } from "../../plugin/allocator.ts"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const tuned = process.argv[2] === "tuned" ? tuneMalloc() : false
let moved = 0
/** A short quiet period (a node's is 30 s), so the test need not wait long. */
const QUIET_MS = 1000
const stop = tuned ? holdFreedMemoryWhileBusy(() => moved, QUIET_MS) : () => {}

/** One batch: ~96 MiB of 3–5 MiB buffers, touched, dropped, collected. */
function round(seed: number): void {
  let held: Uint8Array[] = []
  for (let i = 0; i < 24; i++) {
    const b = new Uint8Array((3 << 20) + ((i * 7919 + seed) % 3) * (1 << 20))
    b.fill(seed + 1)
    moved += b.length
    held.push(b)
  }
  held = []
  gc()
}

const MIB = 1 << 20
round(0) // warm-up: the heap grows once
const before = process.resourceUsage().minorPageFault
const movedBefore = moved
for (let r = 1; r <= 8; r++) round(r)
const bytes = moved - movedBefore
const faultsPerMiB = (process.resourceUsage().minorPageFault - before) / (bytes / MIB)
const rssMiB = process.memoryUsage.rss() / MIB
// two quiet ticks: the watcher sees the last batch's bytes, then nothing new
await new Promise((r) => setTimeout(r, QUIET_MS * 2 + 500))
const afterQuiet = { rssMiB: process.memoryUsage.rss() / MIB, trims: allocatorStats.trims }
stop()
console.log(JSON.stringify({ tuned, faultsPerMiB, rssMiB, afterQuiet }))
