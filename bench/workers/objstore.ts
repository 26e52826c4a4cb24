/**
 * The JetStream Object Store baseline of bench/transfer, with the default client settings
 * (`@nats-io/obj`: 128 KiB chunks, its default SHA-256). One operation per process.
 *
 *   node --import tsx bench/workers/objstore.ts put <url> <bucket> <name> <bytes> <seed>
 *     → { ms, bytes, cpuS, maxRssMiB }   (creates the bucket; puts the same seeded bytes as Blobs.put)
 *   node --import tsx bench/workers/objstore.ts get <url> <bucket> <name>
 *     → { ms, bytes, cpuS, maxRssMiB }   (reads .data to the end, checks .error, then destroys the bucket)
 */
import { connect } from "@nats-io/transport-node"
import { cpuS, exitWithDriver, maxRssMiB, now, tuneBaselineMalloc } from "./measure.ts"
import { Objm } from "@nats-io/obj"
import { seededStream } from "../../test/support/bytes.ts"

const [op, url, bucket, name, sizeText, seedText] = process.argv.slice(2)

exitWithDriver()
tuneBaselineMalloc()

const nc = await connect({ servers: url!, name: `obj-${op}` })
const objm = new Objm(nc)

if (op === "put") {
  const size = Number(sizeText)
  const os = await objm.create(bucket!)
  const it = seededStream(size, Number(seedText))
  const rs = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const r = await it.next()
      if (r.done) ctrl.close()
      else ctrl.enqueue(r.value)
    },
  })
  const c0 = cpuS()
  const t0 = now()
  const info = await os.put({ name: name! }, rs)
  const ms = now() - t0
  if (info.size !== size) throw new Error(`object store put ${info.size} of ${size}`)
  process.stdout.write(`${JSON.stringify({ ms, bytes: info.size, cpuS: cpuS() - c0, maxRssMiB: maxRssMiB() })}\n`)
} else if (op === "get") {
  const os = await objm.open(bucket!)
  const c0 = cpuS()
  const t0 = now()
  const r = await os.get(name!)
  if (r === null) throw new Error(`object ${name} not found`)
  let bytes = 0
  const reader = r.data.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    bytes += value.length
  }
  const err = await r.error
  const ms = now() - t0
  const cpu = cpuS() - c0
  if (err) throw err
  if (bytes !== r.info.size) throw new Error(`object store get ${bytes} of ${r.info.size}`)
  await os.destroy()
  process.stdout.write(`${JSON.stringify({ ms, bytes, cpuS: cpu, maxRssMiB: maxRssMiB() })}\n`)
} else {
  console.error(`unknown op ${op}`)
  process.exit(2)
}
await nc.drain()
process.exit(0)
