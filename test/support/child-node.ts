/**
 * A mesh node in its own process (run with `node --import tsx`), for tests that kill holders:
 *   put   <natsUrl> <prefix> <node> <dir> <bytes> <seed>  puts seeded bytes, prints the ref, serves
 *   fetch <natsUrl> <prefix> <node> <dir> <ref>           fetches the blob, prints "have", serves
 * It serves until killed.
 */
import { connect } from "@nats-io/transport-node"
import { Blobs, fetchBlob } from "../../plugin/index.ts"
import { seededStream } from "./bytes.ts"

const [mode, url, prefix, node, dir, a, b] = process.argv.slice(2)
const nc = await connect({ servers: url! })
const blobs = await Blobs.open({ dir: dir!, nats: nc, node: node!, prefix: prefix!, heartbeatMs: 200, cacheBytes: 0 })
if (mode === "put") {
  const ref = await blobs.put(seededStream(Number(a), Number(b)))
  process.stdout.write(`${ref}\n`)
} else {
  await fetchBlob(blobs, a!)
  process.stdout.write("have\n")
}
setInterval(() => {}, 1 << 30)
