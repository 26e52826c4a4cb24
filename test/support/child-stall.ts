/**
 * A mesh node in its own process whose event loop can be blocked (Atomics.wait), for the
 * slow-consumer tests. One JSON argument:
 *   { mode: "hold", url, prefix, node, dir, size, seed }
 *       puts seeded bytes, prints "ref <ref>", serves; a message on `<prefix>.test.stall.<node>`
 *       whose body is a number of ms blocks the loop that long (other messages there are ballast)
 *   { mode: "read", url, prefix, node, dir, ref, stallAfter, stallMs }
 *       reads the blob streaming and hashing; once `stallAfter` bytes have arrived it blocks its
 *       loop for `stallMs` while the holder's frames keep coming; prints "stalled", then
 *       "read ok <hex> <ms>" or "read err <code> <ms>" (ms from the stall's end), and after a
 *       failure "retry ok <hex>" or "retry err <code>"; then "failures <holders blamed, by code>" and
 *       "statuses <nats.js statuses>"
 * Both use the fault tests' reconnect settings.
 */
import { mkdir } from "node:fs/promises"
import { connect } from "@nats-io/transport-node"
import { Blobs } from "../../plugin/index.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { seededStream } from "./bytes.ts"
import { RECONNECT } from "./fault-node.ts"

interface Args {
  mode: "hold" | "read"
  url: string
  prefix: string
  node: string
  dir: string
  size?: number
  seed?: number
  ref?: string
  stallAfter?: number
  stallMs?: number
  /** Extra Blobs.open options (chunkConcurrency, idleTimeoutMs...). */
  attach?: Record<string, number>
}

const args = JSON.parse(process.argv[2]!) as Args
const nc = await connect({ servers: args.url, ...RECONNECT })
const statuses: string[] = []
void (async () => {
  for await (const s of nc.status()) statuses.push(s.type)
})().catch(() => {})
await mkdir(args.dir, { recursive: true })
const blobs = await Blobs.open({ dir: args.dir, nats: nc, node: args.node, prefix: args.prefix, heartbeatMs: 200, discoveryTimeoutMs: 2000, idleTimeoutMs: 1500, cacheBytes: 0, ...args.attach })
const say = (line: string) => process.stdout.write(`${line}\n`)
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

if (args.mode === "hold") {
  const ref = await blobs.put(seededStream(args.size!, args.seed!))
  nc.subscribe(`${args.prefix}.test.stall.${args.node}`, {
    callback: (_err, msg) => {
      const ms = Number(new TextDecoder().decode(msg.data.subarray(0, 16)))
      if (Number.isInteger(ms) && ms > 0) {
        say("stalling")
        block(ms)
        say("stalled")
      }
    },
  })
  await nc.flush()
  say(`ref ${ref}`)
  setInterval(() => say(`statuses ${statuses.join(",")}`), 500)
} else {
  const hb = await loadHashBackend("native")
  const mesh = blobs.mesh!
  const attempt = async (stall: boolean): Promise<{ ok: boolean; text: string; endedAt: number }> => {
    const h = hb.create()
    let stalled = !stall
    try {
      for await (const part of blobs.read(args.ref!)) {
        h.update(part)
        if (!stalled && mesh.receiver.stats().bytesReceived >= args.stallAfter!) {
          stalled = true
          // blocks this process while the holder keeps sending up to its credit: the server's
          // writes to us back up until it cuts us off as a slow consumer
          block(args.stallMs!)
          say("stalled")
          stallEnd = Date.now()
        }
      }
      return { ok: true, text: `ok ${toHex(h.digest())}`, endedAt: Date.now() }
    } catch (err) {
      return { ok: false, text: `err ${(err as { code?: string }).code ?? String(err)}`, endedAt: Date.now() }
    }
  }
  let stallEnd = 0
  const first = await attempt(true)
  say(`read ${first.text} ${first.endedAt - stallEnd}`)
  if (!first.ok) say(`retry ${(await attempt(false)).text}`)
  say(`failures ${JSON.stringify(mesh.holderFailures)}`)
  say(`statuses ${statuses.join(",")}`)
  await blobs.close()
  await nc.close()
  say("done")
}
