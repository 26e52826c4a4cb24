/**
 * Child-process worker for the fetchDir kill tests (run with `node --import tsx`):
 *   <storeDir> <rootRef> <dest>   opens the store, prints "atomicSwap=<true|false>" (whether the
 *                                 rename-exchange addon is loaded: DATAFORTS_NO_NATIVE turns it off)
 *                                 and "ready", fetches the tree into dest, prints "done"
 */
import { atomicSwapAvailable } from "../../plugin/dir-swap.ts"
import { Blobs, fetchDir } from "../../plugin/index.ts"

const [storeDir, root, dest] = process.argv.slice(2)
const blobs = await Blobs.open({ dir: storeDir!, cacheBytes: 0 })
process.stdout.write(`atomicSwap=${atomicSwapAvailable}\nready\n`)
await fetchDir(blobs, root!, dest!, { concurrency: 8 })
process.stdout.write("done\n")
await blobs.close()
