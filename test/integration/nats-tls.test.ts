/**
 * Dataforts over a TLS nats-server (client certificates required, a CA made in the test):
 * the holder's raw socket writes (transfer/nats-wire.ts) go through the TLS socket, and must
 * keep their order with the application's own publishes on the same connection.
 */
import { TLSSocket } from "node:tls"
import type { NatsConnection } from "@nats-io/nats-core"
import { connect } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Blobs, type BlobRef } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { sameBytes } from "../support/expect.ts"
import { type NatsServerHandle, startNatsServer } from "../support/nats-server.ts"
import { until } from "../support/poll.ts"
import { makeTestPki, type TestPki } from "../support/tls.ts"

/** An application message: seq u32 | length u32 | bytes derived from seq (so corruption shows). */
function appMessage(seq: number): Uint8Array {
  const len = (seq * 7919) % 3000
  const out = new Uint8Array(8 + len)
  const view = new DataView(out.buffer)
  view.setUint32(0, seq)
  view.setUint32(4, len)
  for (let i = 0; i < len; i++) out[8 + i] = (seq + i * 31) & 0xff
  return out
}

function isAppMessage(b: Uint8Array, seq: number): boolean {
  return Buffer.from(b).equals(appMessage(seq))
}

describe("Dataforts over TLS", () => {
  let pki: TestPki
  let server: NatsServerHandle
  const conns: NatsConnection[] = []
  const nodes: Blobs[] = []
  beforeAll(async () => {
    pki = await makeTestPki()
    server = await startNatsServer({ config: pki.serverTlsConfig })
  })
  afterAll(async () => {
    for (const b of nodes) await b.close().catch(() => {})
    for (const nc of conns) await nc.close().catch(() => {})
    await server?.stop()
    await pki?.remove()
  })

  async function connectTls(): Promise<NatsConnection> {
    const nc = await connect({ servers: server.url, tls: { ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem } })
    conns.push(nc)
    return nc
  }

  it("refuses a client without a certificate, and one that does not trust the CA", async () => {
    const noCert = await connect({ servers: server.url, tls: { ca: pki.caPem }, reconnect: false }).then(
      (nc) => nc.close().then(() => "connected"),
      () => "refused",
    )
    expect(noCert).toBe("refused")
    const noCa = await connect({ servers: server.url, tls: { cert: pki.clientCertPem, key: pki.clientKeyPem }, reconnect: false }).then(
      (nc) => nc.close().then(() => "connected"),
      () => "refused",
    )
    expect(noCa).toBe("refused")
  })

  it("a 64 MiB blob goes over the raw-write path through the TLS socket, while the holder's connection publishes application messages that all arrive intact and in order; batches and folds work", async () => {
    const prefix = "dftls"
    const ncA = await connectTls()
    const ncB = await connectTls()
    const ncApp = await connectTls()
    // the raw-write path writes to this socket: it is the TLS one
    const socketOf = (nc: NatsConnection) => (nc as unknown as { protocol: { transport: { socket: unknown } } }).protocol.transport.socket
    expect(socketOf(ncA)).toBeInstanceOf(TLSSocket)
    expect((socketOf(ncA) as TLSSocket).encrypted).toBe(true)

    const opts = { memory: true, prefix, heartbeatMs: 200, discoveryTimeoutMs: 5000, idleTimeoutMs: 5000 } as const
    const a = await Blobs.open({ ...opts, nats: ncA, node: "a" })
    nodes.push(a)
    const b = await Blobs.open({ ...opts, nats: ncB, node: "b" })
    nodes.push(b)

    // the application's messages on the holder's own connection, counted on another
    let received = 0
    let bad = 0
    ncApp.subscribe("app.events", {
      callback: (err, m) => {
        if (err !== null || !isAppMessage(m.data, received)) bad++
        received++
      },
    })
    await ncApp.flush()

    const big = seededBytes(64 << 20, 21)
    const ref = await a.put(big)
    let sent = 0
    let transferring = true
    const publisher = (async () => {
      // a steady stream beside the transfer (up to ~10k messages/s): publishes interleave with
      // the holder's socket writes
      while (transferring || sent < 2000) {
        for (let i = 0; i < 20; i++) ncA.publish("app.events", appMessage(sent++))
        await new Promise((r) => setTimeout(r, 2))
      }
    })()
    let got: Uint8Array
    try {
      got = await b.get(ref)
    } finally {
      transferring = false
    }
    const sentDuringTransfer = sent
    await publisher
    expect(sameBytes(got, big)).toBe(true)
    const served = a.mesh!.sender.stats()
    expect(served.bytesServed).toBeGreaterThanOrEqual(big.length)
    // most DATA frames were runs of PUB records written straight to the TLS socket
    expect(served.framesWrittenDirect).toBeGreaterThan(served.framesSent / 2)
    await ncA.flush()
    await until(() => received >= sent, `all ${sent} application messages arrive`, 30_000)
    expect(received).toBe(sent)
    expect(sentDuringTransfer).toBeGreaterThan(100) // they really interleaved with the frames
    expect(bad).toBe(0)

    // folds converge over TLS: b became a holder of the whole blob, and a knows it
    await until(() => a.mesh!.folds.holdersOf(ref.hex).includes("b"), "a learns b holds the blob")
    expect(b.mesh!.folds.nearestHolders(ref.hex)).toContain("a")

    // a batch of small blobs in one exchange per few hundred
    const smalls = Array.from({ length: 300 }, (_, i) => seededBytes(500 + ((i * 37) % 4000), 100 + i))
    const refs: BlobRef[] = []
    for (const s of smalls) refs.push(await a.put(s))
    await until(() => refs.every((r) => b.mesh!.folds.nearestHolders(r.hex).includes("a")), "b learns a holds the small blobs")
    const rest = await b.mesh!.ensureLocal(refs)
    expect(rest).toEqual([])
    expect(a.mesh!.batches.served()).toBeGreaterThan(0)
    for (const [i, r] of refs.entries()) expect(sameBytes(await b.get(r), smalls[i]!)).toBe(true)
  })
})
