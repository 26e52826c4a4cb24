/**
 * Child-process worker for the CLI tests (run with `node --import tsx`): opens the durable
 * store at argv[2], prints "ready", and holds it open until SIGTERM (then closes cleanly).
 */
import { Blobs } from "../../plugin/index.ts"

const blobs = await Blobs.open({ dir: process.argv[2]! })
process.stdout.write("ready\n")
// a pending promise alone does not keep Node running: the timer does
const alive = setInterval(() => {}, 60_000)
await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()))
clearInterval(alive)
await blobs.close()
