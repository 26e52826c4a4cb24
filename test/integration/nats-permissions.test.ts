/**
 * A nats-server that enforces subject permissions, configured from the same generator as
 * `net-mesh auth-config` and docs/OPERATIONS.md (plugin/auth-config.ts): nodes bound to their
 * own users, a reader, an observer, and users missing the transfer subjects.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"
import type { NatsConnection } from "@nats-io/nats-core"
import { connect } from "@nats-io/transport-node"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { jsonBytes } from "../../folds/wire.ts"
import { Materializer } from "../../folds/index.ts"
import { type AuthUser, authorizationBlock, natsPermissions } from "../../plugin/auth-config.ts"
import { Blobs, metricsRegistry, PermissionError } from "../../plugin/index.ts"
import { natsFoldBus, watchDenials } from "../../plugin/nats-bus.ts"
import type { Denial } from "../../transfer/nats-denials.ts"
import { seededBytes } from "../support/bytes.ts"
import { codeOf, sameBytes } from "../support/expect.ts"
import { type NatsServerHandle, startNatsServer } from "../support/nats-server.ts"
import { until } from "../support/poll.ts"

const prefix = "dfperm"
const node = (name: string): AuthUser => ({ role: "node", node: name, prefix, password: `pw-${name}` })
const minus = (xs: readonly string[], drop: string) => xs.filter((x) => x !== drop)
const nodePerms = (name: string) => natsPermissions("node", { node: name, prefix })
const USERS: AuthUser[] = [
  node("a"),
  node("b"),
  // c's connection has its own inbox prefix: only c may subscribe to its replies
  { ...node("c"), inboxPrefix: "_INBOX_c" },
  { role: "reader", node: "r", prefix, password: "pw-r" },
  { role: "observer", user: "obs", prefix, password: "pw-obs" },
  // a node's permissions without the receiver's data subscription
  { ...node("deaf"), permissions: { ...nodePerms("deaf"), subscribe: { allow: minus(nodePerms("deaf").subscribe.allow, `${prefix}.xfer.in.*.*`) } } },
  // ... and without the right to send REQ/CREDIT/CANCEL to holders
  { ...node("mute"), permissions: { ...nodePerms("mute"), publish: { allow: minus(nodePerms("mute").publish.allow, `${prefix}.xfer.*`) } } },
]
/** Generous upper bounds, never timings: a denial must not turn into a hang. */
const BOUND_MS = 10_000

describe("a nats-server that enforces Dataforts' permissions", () => {
  let server: NatsServerHandle
  const open: Array<{ close(): Promise<void> }> = []
  beforeAll(async () => {
    server = await startNatsServer({ config: authorizationBlock(USERS) })
  })
  afterAll(async () => {
    await server?.stop()
  })
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close().catch(() => {})
  })

  async function connectAs(user: string): Promise<NatsConnection> {
    const nc = await connect({ servers: server.url, user, pass: `pw-${user}`, ...(user === "c" ? { inboxPrefix: "_INBOX_c" } : {}) })
    open.push({ close: () => nc.close() })
    return nc
  }

  async function openNode(user: string, name = user): Promise<Blobs> {
    const blobs = await Blobs.open({ memory: true, nats: await connectAs(user), node: name, prefix, heartbeatMs: 200, discoveryTimeoutMs: 3000, idleTimeoutMs: 1500 })
    open.push(blobs)
    return blobs
  }

  /** Rejects after `ms`: what a hang would look like. */
  const within = <T>(p: Promise<T>, ms = BOUND_MS) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms).unref())])

  it("bound nodes exchange bytes, and a reader gets them while the server refuses its fold facts (counted; it keeps running)", async () => {
    const a = await openNode("a")
    const b = await openNode("b")
    const payload = seededBytes(3 << 20, 11) // several chunks: manifest + streamed chunks
    const small = seededBytes(5000, 12)
    const ref = await a.put(payload)
    const smallRef = await a.put(small)
    expect(sameBytes(await b.get(ref), payload)).toBe(true)
    expect(sameBytes(await b.get(smallRef), small)).toBe(true)

    const r = await openNode("r")
    expect(sameBytes(await within(r.get(ref)), payload)).toBe(true)
    // its heartbeats and holder adverts were refused by the server, and counted
    await until(() => r.mesh!.bus.publishesDenied() > 0, "the reader counts refused fold facts")
    const metrics = await metricsRegistry(r).getSingleMetricAsString("dataforts_fold_publishes_denied_total")
    expect(Number(/\s(\d+)\s*$/.exec(metrics)?.[1])).toBeGreaterThan(0)
    // nobody hears it: it speaks for no one, not even itself
    expect(a.mesh!.folds.liveNodes()).not.toContain("r")
    expect(a.mesh!.folds.holdersOf(ref.hex)).not.toContain("r")
    // still running: a second read works
    expect(sameBytes(await within(r.get(smallRef)), small)).toBe(true)
    expect(a.mesh!.bus.publishesDenied()).toBe(0)
  })

  it("a client without the data subscription, or without the right to send REQ, gets PERMISSION in bounded time", async () => {
    const a = await openNode("a")
    const ref = await a.put(seededBytes(200_000, 13))
    const deaf = await openNode("deaf")
    const mute = await openNode("mute")
    await until(() => deaf.mesh!.folds.nearestHolders(ref.hex).length > 0 && mute.mesh!.folds.nearestHolders(ref.hex).length > 0, "both learn a holds it")
    for (const [who, operation] of [[deaf, "subscribe"], [mute, "publish"]] as const) {
      const err = await within(who.get(ref).then(() => undefined, (e: unknown) => e))
      expect(err).toBeInstanceOf(PermissionError)
      expect((err as PermissionError).code).toBe("PERMISSION")
      expect((err as PermissionError).operation).toBe(operation)
      expect(await codeOf(who.stat(ref))).toBe("NOT_FOUND")
    }
  })

  it("a node whose subscriptions are denied fails Blobs.open with PERMISSION in bounded time", async () => {
    // the observer's user may not subscribe to any node's request subjects
    const nc = await connectAs("obs")
    const err = await within(Blobs.open({ memory: true, nats: nc, node: "x", prefix }).then(() => undefined, (e: unknown) => e))
    expect((err as { code?: string }).code).toBe("PERMISSION")
    expect((err as PermissionError).operation).toBe("subscribe")
    expect(nc.isClosed()).toBe(false) // the caller's connection stays theirs
    // user a cannot run node b either: b's request subjects are b's
    const ncA = await connectAs("a")
    expect(await within(codeOf(Blobs.open({ memory: true, nats: ncA, node: "b", prefix })))).toBe("PERMISSION")
  })

  it("user a cannot publish fold facts as b: b's facts seen by others stay b's own, and the server's refusals are counted", async () => {
    const b = await openNode("b")
    const ref = await b.put(seededBytes(10_000, 14))
    // c joins after b advertised: it must catch up through a sync
    await until(() => (b.mesh!.folds.ownWatermarks().holders ?? 0) > 0, "b advertises")
    const c = await openNode("c")
    await until(() => c.mesh!.folds.holdersOf(ref.hex).includes("b"), "c sees b's real advert")
    // c joined after b's advert: it caught up through a sync, whose reply came to c's own inboxes
    await until(() => c.mesh!.folds.stats.syncs > 0, "c syncs b's snapshot")
    const forged = "ab".repeat(32)

    // an impostor materializer on a's connection, claiming to be b: the server refuses every
    // fact it sends, and its subscriptions to b's sync and ping subjects (it cannot answer for b)
    const ncA = await connectAs("a")
    const refused = new Set<string>()
    const unwatch = watchDenials(ncA, (d) => refused.add(`${d.operation} ${d.subject}`))
    const impostorBus = natsFoldBus(ncA)
    const impostor = new Materializer({ bus: impostorBus, node: "b", prefix, heartbeatMs: 100, holdersBatchMs: 1 })
    open.push(impostor)
    impostor.start()
    impostor.have([forged])
    impostor.drop([ref.hex])
    // and raw publishes straight on b's subjects, and on a's own subject with b as the origin
    const malformedBefore = c.mesh!.folds.stats.malformed
    const fact = (seq: number, data: unknown) => jsonBytes({ origin: "b", epoch: Date.now() * 1000 + 999, seq, data })
    ncA.publish(`${prefix}.fold.holders.b`, fact(1, { add: [forged], remove: [ref.hex] }))
    ncA.publish(`${prefix}.fold.nodes.b`, fact(1, { zone: "forged", intervalMs: 100, seqs: {} }))
    ncA.publish(`${prefix}.fold.holders.a`, fact(1, { add: [forged], remove: [ref.hex] })) // allowed subject, wrong origin
    await ncA.flush()
    await until(() => refused.size >= 4 && impostorBus.publishesDenied() > 0, "the refusals arrive")
    expect([...refused].sort()).toEqual([`publish ${prefix}.fold.holders.b`, `publish ${prefix}.fold.nodes.b`, `subscribe ${prefix}.ping.b`, `subscribe ${prefix}.sync.b`])
    // the one the server let through (a's own subject) was dropped by the origin check
    await until(() => c.mesh!.folds.stats.malformed > malformedBefore, "c drops the wrong-origin fact")

    // a few heartbeats later c still sees exactly what b said: b holds ref, nobody holds forged
    const mark = c.mesh!.folds.stats.applied
    await until(() => c.mesh!.folds.stats.applied > mark + 3, "c hears b's heartbeats")
    expect(c.mesh!.folds.holdersOf(ref.hex)).toContain("b")
    expect(c.mesh!.folds.holdersOf(forged)).toEqual([])
    expect(c.mesh!.folds.zoneOf("b")).toBeUndefined()
    // the impostor's bus stopped trying after the first refusals, and still counts what it withheld
    const denied = impostorBus.publishesDenied()
    impostor.have(["cd".repeat(32)])
    impostor.flush()
    expect(impostorBus.publishesDenied()).toBeGreaterThan(denied)
    unwatch()
    impostorBus.dispose()
  })

  it("the observer subscribes to folds and asks for snapshots, but publishes no fact", async () => {
    const a = await openNode("a")
    const obs = await connectAs("obs")
    const seen: string[] = []
    obs.subscribe(`${prefix}.fold.*.*`, {
      callback: (err, m) => {
        if (err === null) seen.push(m.subject)
      },
    })
    const refused: Denial[] = []
    const unwatch = watchDenials(obs, (d) => refused.push(d))
    await a.put(seededBytes(1000, 15))
    await until(() => seen.includes(`${prefix}.fold.holders.a`) && seen.includes(`${prefix}.fold.nodes.a`), "the observer hears a's facts")
    // a sync request is allowed, and a answers it (allow_responses)
    const page = await obs.request(`${prefix}.sync.a`, jsonBytes({ fold: "holders", page: 0 }), { timeout: 5000 })
    expect(page.data.length).toBeGreaterThan(4)
    obs.publish(`${prefix}.fold.holders.a`, jsonBytes({ origin: "a", epoch: 1, seq: 1_000_000, data: { add: [], remove: [] } }))
    obs.publish(`${prefix}.xfer.a`, new Uint8Array([1, 0x12]))
    await obs.flush()
    await until(() => refused.length >= 2, "the server refuses the observer's publishes")
    unwatch()
    expect(refused.map((d) => `${d.operation} ${d.subject}`).sort()).toEqual([`publish ${prefix}.fold.holders.a`, `publish ${prefix}.xfer.a`])
  })
})

describe("net-mesh auth-config", () => {
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../../cli/net-mesh.ts"), "auth-config", ...args]).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? "" }),
    )

  it("prints the generator's block, which a nats-server accepts with the password from the environment", async () => {
    // one real run (parsing, lazy import, exit code); the other cases in test/unit/auth-config.test.ts
    const printed = await cli(["--node", "cli-a", "--prefix", prefix])
    expect(printed).toEqual({ code: 0, stdout: authorizationBlock([{ role: "node", node: "cli-a", prefix }]) })

    // nats-server resolves $DATAFORTS_PASSWORD_CLI_A from its environment (inherited from us)
    process.env.DATAFORTS_PASSWORD_CLI_A = "secret-from-env"
    const server = await startNatsServer({ config: printed.stdout }).finally(() => delete process.env.DATAFORTS_PASSWORD_CLI_A)
    try {
      const nc = await connect({ servers: server.url, user: "cli-a", pass: "secret-from-env" })
      const blobs = await Blobs.open({ memory: true, nats: nc, node: "cli-a", prefix })
      await blobs.close()
      await nc.close()
      const wrong = await connect({ servers: server.url, user: "cli-a", pass: "guess", reconnect: false }).then(
        (c) => c.close().then(() => "connected"),
        () => "refused",
      )
      expect(wrong).toBe("refused")
    } finally {
      await server.stop()
    }
  })
})
