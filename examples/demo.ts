/**
 * `npm run demo`: the end-to-end story in one process.
 *
 *  1. a loopback nats-server (or the one at NATS_URL), three nodes with their own stores
 *  2. the producer puts an artifact and announces it with ArtifactReady (ref as a string)
 *  3. two consumers resolve the ref concurrently from the nearest holders and verify it
 *  4. a consumer reads it again: served from its own cache/disk, no network
 *  5. the producer leaves; a late node fetches the artifact from the consumers
 *
 * Everything (server, nodes, temp stores) is cleaned up; exits 0 when every read verified.
 */
import { formatSources, sourcesTotal } from "../cli/mesh-sources.ts"
import { formatBytes, ProgressBar } from "../cli/progress-bar.ts"
import type { Progress } from "../plugin/index.ts"
import { seededBytes } from "../test/support/bytes.ts"
import { type NatsServerHandle, startNatsServer } from "../test/support/nats-server.ts"
import { artifactSubject, type ConsumerResult, consumeOne, examplePrefix, type ExampleNode, openNode, produce, resolveArtifact } from "./artifact-ready.ts"

const SIZE = Number(process.env.DEMO_MIB ?? 32) * 1048576
const out = (line = "") => process.stdout.write(`${line}\n`)
const step = (n: number, text: string) => out(`\n== ${n}. ${text}`)

async function demo(cleanup: Array<() => Promise<void>>): Promise<boolean> {
  let server: NatsServerHandle | undefined
  let natsUrl = process.env.NATS_URL
  if (natsUrl === undefined) {
    server = await startNatsServer().catch((err: unknown) => {
      throw new Error(`could not start nats-server (apt-get install nats-server, or set NATS_URL): ${(err as Error).message}`)
    })
    cleanup.push(() => server!.stop())
    natsUrl = server.url
  }
  const prefix = examplePrefix()
  step(1, `mesh: ${server ? `loopback nats-server ${natsUrl} (started for this demo)` : `nats-server at ${natsUrl}`}, prefix ${prefix}`)
  const open = async (name: string) => {
    const node = await openNode(natsUrl!, name, prefix)
    cleanup.push(() => node.stop())
    out(`   node ${name.padEnd(11)} store ${node.dir}`)
    return node
  }
  const producer = await open("producer")
  const consumers = [await open("consumer-1"), await open("consumer-2")]

  step(2, `producer puts a ${formatBytes(SIZE)} artifact and publishes ArtifactReady on ${artifactSubject(prefix)}`)
  const fetched = new Map<string, Progress>()
  const waiting = consumers.map((c) => consumeOne(c, prefix, { onProgress: (p) => fetched.set(c.name, p), signal: AbortSignal.timeout(120_000) }))
  await Promise.all(waiting.map((w) => w.ready))
  const artifact = seededBytes(SIZE, 2024)
  const putBar = new ProgressBar("   put  ")
  const event = await produce(producer, prefix, "build-42", artifact, putBar.update)
  putBar.finish({ bytes: SIZE, totalBytes: SIZE })
  out(`   event ${JSON.stringify(event)}`)

  step(3, "consumers resolve the ref concurrently (the bytes never touch the event subject)")
  const getBar = new ProgressBar("   fetch (2 consumers)")
  const ticker = setInterval(() => {
    let bytes = 0
    for (const p of fetched.values()) bytes += p.bytes
    getBar.update({ bytes, totalBytes: SIZE * consumers.length })
  }, 100)
  let results: ConsumerResult[]
  try {
    results = await Promise.all(waiting.map((w) => w.result))
  } finally {
    clearInterval(ticker)
  }
  getBar.finish({ bytes: SIZE * consumers.length, totalBytes: SIZE * consumers.length })
  for (const r of results) describe(r)

  step(4, "consumer-1 reads the artifact again: served locally")
  const reread = await resolveArtifact(consumers[0]!, event)
  describe(reread)

  step(5, "the producer leaves; a late node joins and fetches from the consumers")
  await producer.stop()
  out("   producer stopped")
  const late: ExampleNode = await open("late-joiner")
  const lateBar = new ProgressBar("   fetch (late-joiner)")
  const lateResult = await resolveArtifact(late, event, { onProgress: lateBar.update })
  lateBar.finish({ bytes: SIZE, totalBytes: SIZE })
  describe(lateResult)

  const all = [...results, reread, lateResult]
  step(6, "summary: where the bytes came from")
  const rows: Array<[string, ConsumerResult]> = [
    [`${results[0]!.node} (first read)`, results[0]!],
    [`${results[1]!.node} (first read)`, results[1]!],
    [`${reread.node} (re-read)`, reread],
    [`${lateResult.node} (producer gone)`, lateResult],
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  for (const [label, r] of rows) {
    const from = [
      ...Object.entries(r.sources.peers).map(([peer, n]) => `peer ${peer} ${formatBytes(n)}`),
      ...(r.sources.cache ? [`cache ${formatBytes(r.sources.cache)}`] : []),
      ...(r.sources.disk ? [`disk ${formatBytes(r.sources.disk)}`] : []),
    ]
    out(`   ${label.padEnd(width)}  ${r.verified ? "verified" : "MISMATCH"}  ${from.join(", ")}`)
  }
  const ok = all.every((r) => r.verified)
  out(`\n${ok ? "OK" : "FAILED"}: ${all.length} reads of ${event.artifact.slice(0, 40)}…, every one ${ok ? "verified against the producer's sha256" : "NOT verified"}`)
  return ok
}

function describe(r: ConsumerResult): void {
  const secs = Math.max(r.ms / 1000, 0.001)
  out(`   ${r.node}: ${r.verified ? "verified sha256" : "DIGEST MISMATCH"}, ${formatBytes(r.bytes)} in ${secs.toFixed(2)}s (${formatBytes(r.bytes / secs)}/s), ${formatBytes(sourcesTotal(r.sources))} read from:`)
  out(formatSources(r.sources, "     "))
}

const cleanup: Array<() => Promise<void>> = []
const runCleanup = async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {})
}
const onSignal = () => {
  void runCleanup().finally(() => process.exit(130))
}
process.once("SIGINT", onSignal)
process.once("SIGTERM", onSignal)
let ok = false
try {
  ok = await demo(cleanup)
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error)?.stack ?? String(err)}\n`)
} finally {
  await runCleanup()
  process.off("SIGINT", onSignal)
  process.off("SIGTERM", onSignal)
}
process.exitCode = ok ? 0 : 1
