/**
 * ArtifactReady: a producer puts a build artifact and announces it on an ordinary NATS
 * subject; the event carries only the ref (a short string) and a digest. Consumers parse the
 * ref, resolve it from the nearest holders, and verify the bytes against the digest.
 *
 *   NATS_URL=nats://127.0.0.1:4222 npx tsx examples/artifact-ready.ts
 *
 * Three nodes in one process here (each with its own connection and store) stand in for
 * three machines; nothing below depends on them sharing a process.
 */
import { createHash, randomUUID } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { BlobRef, Blobs, type BlobsAttachOptions, type Progress, type ReadSources } from "../plugin/index.ts"
import { seededBytes } from "../test/support/bytes.ts"

/** The application's own event: it rides the bus like any other; the bytes do not. */
export interface ArtifactReady {
  jobId: string
  /** The artifact's BlobRef in string form (`BlobRef.parse` on the other side). */
  artifact: string
  /** sha256 of the artifact's bytes, computed by the producer: consumers check it. */
  sha256: string
  producer: string
}

/** The subject ArtifactReady events go out on. */
export const artifactSubject = (prefix: string) => `jobs.${prefix}.artifact-ready`

/** A fresh subject prefix, so runs on a shared server never see each other. */
export const examplePrefix = () => `ex${randomUUID().replaceAll("-", "").slice(0, 12)}`

/** One node: its own NATS connection and its own store in a temp folder. */
export interface ExampleNode {
  readonly name: string
  readonly nc: NatsConnection
  readonly blobs: Blobs
  readonly dir: string
  /** Closes the node and its connection and removes its store. Idempotent. */
  stop(): Promise<void>
}

export async function openNode(natsUrl: string, name: string, prefix: string, options: Partial<BlobsAttachOptions> = {}): Promise<ExampleNode> {
  const nc = await connect({ servers: natsUrl, name })
  const dir = await mkdtemp(join(tmpdir(), `df-example-${name}-`))
  let blobs: Blobs
  try {
    blobs = await Blobs.open({ dir, nats: nc, node: name, prefix, heartbeatMs: 250, ...options })
  } catch (err) {
    await nc.close()
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  let stopping: Promise<void> | undefined
  return {
    name,
    nc,
    blobs,
    dir,
    stop() {
      stopping ??= (async () => {
        await blobs.close()
        await nc.close()
        await rm(dir, { recursive: true, force: true })
      })()
      return stopping
    },
  }
}

/** What one consumer got: verified or not, and where its bytes came from. */
export interface ConsumerResult {
  node: string
  jobId: string
  ref: string
  bytes: number
  sha256: string
  verified: boolean
  ms: number
  sources: ReadSources
}

/** The digest the producer puts in the event and consumers check. */
export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

/** Puts the artifact and publishes ArtifactReady for it. */
export async function produce(node: ExampleNode, prefix: string, jobId: string, artifact: Uint8Array, onProgress?: (p: Progress) => void): Promise<ArtifactReady> {
  const ref = await node.blobs.put(artifact, { tags: { job: jobId }, ...(onProgress ? { onProgress } : {}) })
  const event: ArtifactReady = { jobId, artifact: ref.toString(), sha256: sha256Hex(artifact), producer: node.name }
  node.nc.publish(artifactSubject(prefix), JSON.stringify(event))
  await node.nc.flush()
  return event
}

/** Resolves an ArtifactReady event on `node`: streams the bytes, hashing them as they come. */
export async function resolveArtifact(node: ExampleNode, event: ArtifactReady, options: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {}): Promise<ConsumerResult> {
  const ref = BlobRef.parse(event.artifact)
  const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
  const hash = createHash("sha256")
  const started = Date.now()
  let bytes = 0
  for await (const part of node.blobs.read(ref, { sources, ...options })) {
    hash.update(part)
    bytes += part.length
  }
  const sha256 = hash.digest("hex")
  return { node: node.name, jobId: event.jobId, ref: ref.toString(), bytes, sha256, verified: sha256 === event.sha256 && bytes === ref.size, ms: Date.now() - started, sources }
}

/**
 * Subscribes `node` to ArtifactReady and resolves the first event it sees. The returned
 * `ready` settles once the server has the subscription (publish after that).
 */
export function consumeOne(node: ExampleNode, prefix: string, options: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {}): { ready: Promise<void>; result: Promise<ConsumerResult> } {
  const sub = node.nc.subscribe(artifactSubject(prefix), { max: 1 })
  const onAbort = () => sub.unsubscribe()
  options.signal?.addEventListener("abort", onAbort, { once: true })
  const result = (async () => {
    try {
      for await (const msg of sub) return await resolveArtifact(node, msg.json<ArtifactReady>(), options)
      throw new Error(`${node.name}: no ArtifactReady event arrived`)
    } finally {
      options.signal?.removeEventListener("abort", onAbort)
    }
  })()
  return { ready: node.nc.flush(), result }
}

export interface ArtifactRound {
  jobId: string
  ref: string
  size: number
  sha256: string
  producer: string
  consumers: ConsumerResult[]
}

/** One producer, any number of consumers: announce, resolve, verify. */
export async function artifactRound(
  producer: ExampleNode,
  consumers: ExampleNode[],
  prefix: string,
  artifact: Uint8Array,
  options: { jobId?: string; onProgress?: (node: string, p: Progress) => void; signal?: AbortSignal } = {},
): Promise<ArtifactRound> {
  const jobId = options.jobId ?? `job-${randomUUID().slice(0, 8)}`
  const signal = options.signal ?? AbortSignal.timeout(120_000)
  const waiting = consumers.map((c) => consumeOne(c, prefix, { signal, ...(options.onProgress ? { onProgress: (p: Progress) => options.onProgress!(c.name, p) } : {}) }))
  await Promise.all(waiting.map((w) => w.ready))
  const event = await produce(producer, prefix, jobId, artifact)
  const results = await Promise.all(waiting.map((w) => w.result))
  return { jobId, ref: event.artifact, size: artifact.length, sha256: event.sha256, producer: producer.name, consumers: results }
}

export interface ArtifactReadyOptions {
  natsUrl: string
  log?: (line: string) => void
  /** Artifact size (default 20 MiB). */
  size?: number
}

/** Producer + two consumers on a fresh prefix; returns who got what from where. */
export async function runArtifactReady({ natsUrl, log = () => {}, size = 20 << 20 }: ArtifactReadyOptions): Promise<ArtifactRound & { prefix: string }> {
  const prefix = examplePrefix()
  const nodes: ExampleNode[] = []
  try {
    for (const name of ["producer", "consumer-1", "consumer-2"]) nodes.push(await openNode(natsUrl, name, prefix))
    const [producer, ...consumers] = nodes as [ExampleNode, ...ExampleNode[]]
    const artifact = seededBytes(size, 42)
    log(`producer puts a ${(size / 1048576).toFixed(1)} MiB artifact and announces it on ${artifactSubject(prefix)}`)
    const round = await artifactRound(producer, consumers, prefix, artifact)
    log(`ref ${round.ref}`)
    for (const c of round.consumers) log(describeResult(c))
    return { ...round, prefix }
  } finally {
    for (const n of nodes.reverse()) await n.stop()
  }
}

/** One line per consumer: verified or not, and where the bytes came from. */
export function describeResult(c: ConsumerResult): string {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`
  const from = [
    ...Object.entries(c.sources.peers).map(([peer, n]) => `${mib(n)} from ${peer}`),
    ...(c.sources.cache ? [`${mib(c.sources.cache)} from its cache`] : []),
    ...(c.sources.disk ? [`${mib(c.sources.disk)} from its disk`] : []),
  ]
  return `${c.node}: ${c.verified ? "verified" : "DIGEST MISMATCH"} ${mib(c.bytes)} in ${c.ms} ms (${from.join(", ") || "nothing"})`
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const summary = await runArtifactReady({ natsUrl: process.env.NATS_URL ?? "nats://127.0.0.1:4222", log: (l) => console.log(l) })
  process.exitCode = summary.consumers.every((c) => c.verified) ? 0 : 1
}
