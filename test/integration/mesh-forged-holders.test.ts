import { randomBytes } from "node:crypto"
import { connect } from "@nats-io/transport-node"
import type { Msg, NatsConnection } from "@nats-io/nats-core"
import { afterEach, describe, expect, inject, it } from "vitest"
import type { BlobRef } from "../../plugin/index.ts"
import { encodeData, encodeErr, encodeFin, encodeHead, ErrCode, FrameType } from "../../transfer/frames.ts"
import { seededBytes } from "../support/bytes.ts"
import { sameBytes } from "../support/expect.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"

/**
 * A fake "node" on an open server: a raw client that heartbeats under a made-up name in the
 * reader's zone (so it is asked first) and advertises blobs it cannot serve. Reads must
 * finish from the honest holder within a bound, and the liar must be skipped afterwards.
 */

const enc = new TextEncoder()
const json = (v: unknown) => enc.encode(JSON.stringify(v))

type Behaviour = "absent" | "silent" | "err" | "garbage" | "lies" | "trickles"

/** Trickle timers of the "trickles" liar (one per REQ), stopped at cleanup. */
const trickles = new Set<ReturnType<typeof setInterval>>()

/** Answers one REQ on the liar's xfer subject the way `behaviour` says. */
function answer(nc: NatsConnection, behaviour: Behaviour, msg: Msg): void {
  const d = msg.data
  if (d[1] !== FrameType.REQ || !msg.reply) return // CREDIT, CANCEL: ignored
  if (behaviour === "err") nc.publish(msg.reply, encodeErr(ErrCode.NOT_FOUND, "not here"))
  else if (behaviour === "garbage") nc.publish(msg.reply, randomBytes(40))
  else if (behaviour === "lies") {
    // a whole "chunk" of the wrong bytes and length, with the asked-for hash echoed
    const bogus = randomBytes(1000)
    nc.publish(msg.reply, encodeHead(bogus.length))
    nc.publish(msg.reply, encodeData(0, bogus))
    nc.publish(msg.reply, encodeFin(bogus.length, d.subarray(2, 34)))
  }
  else if (behaviour === "trickles") {
    // the length asked for, then one byte a second: never idle, never done
    const length = new DataView(d.buffer, d.byteOffset + 42, 4).getUint32(0)
    nc.publish(msg.reply, encodeHead(length))
    let offset = 0
    const reply = msg.reply
    const t = setInterval(() => {
      if (nc.isClosed() || offset >= length) return clearInterval(t)
      nc.publish(reply, encodeData(offset++, new Uint8Array([0])))
    }, 1000)
    trickles.add(t)
  }
  // silent: subscribed, never answers
}

describe("a fake node advertising blobs it cannot serve", () => {
  const nodes: TestNode[] = []
  const cleanups: Array<() => Promise<unknown>> = []
  const url = inject("natsUrl")
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
    for (const n of nodes.splice(0)) await n.stop()
  })

  /** Starts the liar: heartbeats every 200 ms in zone z1 and claims to hold `refs`. */
  async function liar(prefix: string, behaviour: Behaviour, refs: BlobRef[]): Promise<void> {
    const nc = await connect({ servers: url })
    const epoch = Date.now() * 1000
    let seq = 0
    const beat = () => nc.publish(`${prefix}.fold.nodes.liar`, json({ origin: "liar", epoch, seq: ++seq, data: { zone: "z1", intervalMs: 200, watermarks: { holders: 1 } } }))
    beat()
    const timer = setInterval(beat, 200)
    nc.publish(`${prefix}.fold.holders.liar`, json({ origin: "liar", epoch, seq: 1, data: { add: refs.map((r) => r.hex), remove: [] } }))
    if (behaviour !== "absent") nc.subscribe(`${prefix}.xfer.liar`, {
        callback: (err, msg) => {
          if (err === null) answer(nc, behaviour, msg)
        },
      })
    await nc.flush()
    cleanups.push(async () => {
      clearInterval(timer)
      for (const t of trickles) clearInterval(t)
      trickles.clear()
      await nc.close()
    })
  }

  it.each<Behaviour>(["absent", "silent", "err", "garbage", "lies", "trickles"])(
    "a liar that is %s: the read finishes from the honest holder within 15 s, the liar is blamed and the next read skips it",
    async (behaviour) => {
      const prefix = freshPrefix()
      // default idle timeout (5 s): the bound stated in folds/README.md is for default options
      const [honest, reader] = await Promise.all([startNode(url, "honest", { prefix }), startNode(url, "reader", { prefix, zone: "z1", idleTimeoutMs: 5000 })])
      nodes.push(honest!, reader!)
      const big = seededBytes(12 << 20, 41) // a manifest and a few chunks
      const small = seededBytes(20_000, 42) // one chunk
      const refs = [await honest!.blobs.put(big), await honest!.blobs.put(small)]
      await liar(prefix, behaviour, refs)
      const mesh = reader!.blobs.mesh!
      await until(() => refs.every((r) => mesh.holdersFor(r.hex, r.hex).join() === "liar,honest"), "the liar is the reader's first choice")

      const failures = () => Object.values(mesh.holderFailures).reduce((a, b) => a + b, 0)
      const t0 = Date.now()
      expect(sameBytes(await reader!.blobs.get(refs[0]!), big)).toBe(true)
      const took = Date.now() - t0
      console.log(`${behaviour}: first read ${took} ms, failures ${JSON.stringify(mesh.holderFailures)}`)
      expect(took).toBeLessThan(15_000)
      expect(failures()).toBeGreaterThanOrEqual(1)
      expect(mesh.isPenalized("liar")).toBe(true)
      expect(mesh.holdersFor(refs[1]!.hex, refs[1]!.hex)).toEqual(["honest", "liar"])

      // the next read (another blob the liar claims) goes to the honest holder first
      const before = failures()
      expect(sameBytes(await reader!.blobs.get(refs[1]!), small)).toBe(true)
      expect(failures()).toBe(before)
    },
    30_000,
  )

  it("small blobs in batches: a liar that is not listening is blamed, the caller gets the rest to read, and the next batch goes to the honest holder", async () => {
    const prefix = freshPrefix()
    const [honest, reader] = await Promise.all([startNode(url, "honest", { prefix }), startNode(url, "reader", { prefix, zone: "z1" })])
    nodes.push(honest!, reader!)
    const refs: BlobRef[] = []
    for (let i = 0; i < 20; i++) refs.push(await honest!.blobs.put(seededBytes(3000 + i, 70 + i)))
    await liar(prefix, "absent", refs)
    const mesh = reader!.blobs.mesh!
    await until(() => refs.every((r) => mesh.holdersFor(r.hex, r.hex)[0] === "liar" && mesh.holdersFor(r.hex, r.hex).includes("honest")), "the liar is first for every blob")
    const rest = await mesh.ensureLocal(refs)
    expect(rest.length).toBe(refs.length)
    expect(mesh.holderFailures.NO_HOLDER).toBe(1)
    expect(mesh.isPenalized("liar")).toBe(true)
    expect(await mesh.ensureLocal(rest)).toEqual([])
    for (const r of refs) expect(await reader!.blobs.store.hasBlob(r)).toBe(true)
  })
})
