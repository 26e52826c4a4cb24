/**
 * Child-process worker for the fetchDir kill test (run with `node --import tsx`):
 *   <storeDir> <rootRef> <dest>   opens the store, prints "ready", fetches the tree into dest, prints "done"
 */
import { Blobs, fetchDir } from "../../plugin/index.ts"

const [storeDir, root, dest] = process.argv.slice(2)
const blobs = await Blobs.open({ dir: storeDir!, cacheBytes: 0 })
process.stdout.write("ready\n")
await fetchDir(blobs, root!, dest!, { concurrency: 8 })
process.stdout.write("done\n")
await blobs.close()
