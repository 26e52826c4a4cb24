/**
 * Child-process worker for crash and memory tests (run with `node --import tsx`).
 *   put <dir> <bytes> <seed>      : opens the store, prints "ready", puts seeded bytes, prints the ref
 *   putget <dir> <bytes> <seed>   : puts then reads back (streaming), prints JSON { ref, maxRssMiB, readBytes }
 */
import { Blobs } from "../../plugin/index.ts"
import { seededStream } from "./bytes.ts"

const [mode, dir, sizeText, seedText] = process.argv.slice(2)
const size = Number(sizeText)
const seed = Number(seedText)
const blobs = await Blobs.open({ dir: dir!, cacheBytes: 16 << 20 })
process.stdout.write("ready\n")
const ref = await blobs.put(seededStream(size, seed))
if (mode === "put") {
  process.stdout.write(`${ref}\n`)
} else {
  let readBytes = 0
  for await (const part of blobs.read(ref)) readBytes += part.length
  const maxRssMiB = process.resourceUsage().maxRSS / 1024
  process.stdout.write(`${JSON.stringify({ ref: ref.toString(), maxRssMiB, readBytes })}\n`)
}
await blobs.close()
