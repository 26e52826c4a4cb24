/**
 * The raw baseline of bench/transfer: windowed core-NATS pub/sub of fixed-size frames
 * between two processes, no hashing, no disk, no offsets. The publisher keeps at most
 * `window` frames un-acked; the subscriber publishes its cumulative frame count every
 * `ack` frames and at the end. An empty message is the FIN.
 *
 *   node --import tsx bench/workers/raw-pubsub.ts sub <url> <subject> <ack>
 *     → "ready", then { t1, frames, bytes, cpuS, maxRssMiB } after FIN
 *   node --import tsx bench/workers/raw-pubsub.ts pub <url> <subject> <totalBytes> <frameBytes> <window>
 *     → { t0, t1, frames, cpuS, maxRssMiB } (t0 = first publish, wall clock comparable across
 *       processes; cpuS = CPU seconds from just before the first frame to the end)
 */
import { connect } from "@nats-io/transport-node"
import { cpuS, exitWithDriver, maxRssMiB, now, tuneBaselineMalloc } from "./measure.ts"

const [role, url, subject, ...rest] = process.argv.slice(2)

exitWithDriver()
tuneBaselineMalloc()

const nc = await connect({ servers: url!, name: `raw-${role}` })

if (role === "sub") {
  const ack = Number(rest[0] ?? 128)
  let frames = 0
  let bytes = 0
  const done = new Promise<number>((resolve) => {
    nc.subscribe(`${subject}.d`, {
      callback: (_err, msg) => {
        const n = msg.data.length
        if (n === 0) {
          nc.publish(`${subject}.a`, String(frames))
          resolve(now())
          return
        }
        frames++
        bytes += n
        if (frames % ack === 0) nc.publish(`${subject}.a`, String(frames))
      },
    })
  })
  await nc.flush()
  const c0 = cpuS()
  process.stdout.write("ready\n")
  const t1 = await done
  await nc.flush()
  process.stdout.write(`${JSON.stringify({ t1, frames, bytes, cpuS: cpuS() - c0, maxRssMiB: maxRssMiB() })}\n`)
} else if (role === "pub") {
  const total = Number(rest[0])
  const frameBytes = Number(rest[1] ?? 8108)
  const window = Number(rest[2] ?? 512)
  const frame = new Uint8Array(frameBytes).fill(7)
  const count = Math.ceil(total / frameBytes)
  let acked = 0
  let wake: (() => void) | undefined
  nc.subscribe(`${subject}.a`, {
    callback: (_err, msg) => {
      acked = Math.max(acked, Number(msg.string()))
      wake?.()
    },
  })
  await nc.flush()
  const c0 = cpuS()
  const t0 = now()
  for (let sent = 0; sent < count; sent++) {
    while (sent - acked >= window) await new Promise<void>((r) => (wake = r))
    const len = Math.min(frameBytes, total - sent * frameBytes)
    nc.publish(`${subject}.d`, len === frameBytes ? frame : frame.subarray(0, len))
  }
  nc.publish(`${subject}.d`, new Uint8Array(0))
  while (acked < count) await new Promise<void>((r) => (wake = r))
  const t1 = now()
  process.stdout.write(`${JSON.stringify({ t0, t1, frames: count, cpuS: cpuS() - c0, maxRssMiB: maxRssMiB() })}\n`)
} else {
  console.error(`unknown role ${role}`)
  process.exit(2)
}
await nc.drain()
process.exit(0)
