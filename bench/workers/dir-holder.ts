/**
 * A holder node in its own process for bench/dir: stores a tree, prints
 * `ref <root> <storeDir ms>`, then serves until killed.
 *   <natsUrl> <prefix> <storeDir> <tree>
 */
import { connect } from "@nats-io/transport-node"
import { Blobs, storeDir } from "../../plugin/index.ts"
import { benchTunesMalloc } from "./measure.ts"

const [url, prefix, dir, tree] = process.argv.slice(2)
const nc = await connect({ servers: url! })
const blobs = await Blobs.open({ dir: dir!, nats: nc, node: "holder", prefix: prefix!, tuneMalloc: benchTunesMalloc })
const t = performance.now()
const root = await storeDir(blobs, tree!)
process.stdout.write(`ref ${root} ${(performance.now() - t).toFixed(1)}\n`)
setInterval(() => {}, 1 << 30)
