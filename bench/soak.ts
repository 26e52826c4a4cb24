/**
 * `npm run soak [-- --seconds 600] [--seed 1] [--json]`: the soak (test/support/soak.ts) on
 * its own loopback nats-server: 4 node processes, 64 concurrent transfers of 64 KiB–64 MiB
 * plus small gets, holders leaving and joining, every byte checked; RSS flat, fds,
 * subscriptions and timers back to baseline. Prints a table (`--json`: the report as JSON),
 * writes bench/results/soak-<date>.json, exits 1 when a check failed. Bounded: a watchdog
 * ends the run at twice its length plus five minutes.
 */
import { randomUUID } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { startNatsServer } from "../test/support/nats-server.ts"
import { formatSoak, runSoak } from "../test/support/soak.ts"
import { RESULTS } from "./lib.ts"

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "600" }, seed: { type: "string", default: "1" }, json: { type: "boolean", default: false } },
  allowPositionals: true,
})
const seconds = Number(values.seconds)
const seed = Number(values.seed)
if (!(seconds > 0) || !Number.isInteger(seed)) {
  console.error("usage: npm run soak -- [--seconds N] [--seed N] [--json]")
  process.exit(2)
}

const root = await mkdtemp(join(tmpdir(), "df-soak-"))
const server = await startNatsServer()
const watchdog = setTimeout(
  () => {
    console.error(`soak: watchdog after ${2 * seconds + 300} s`)
    process.exit(1)
  },
  (2 * seconds + 300) * 1000,
)
watchdog.unref()
try {
  const report = await runSoak({
    url: server.url,
    prefix: `dfsoak${randomUUID().replaceAll("-", "").slice(0, 10)}`,
    root,
    seconds,
    // the load before the baseline, unmeasured: a node's working set (heaps, malloc arenas, pools) grows in it
    warmupSeconds: Math.min(30, Math.max(5, Math.round(seconds / 10))),
    seed,
    concurrency: 64,
    blobs: 48,
    minBytes: 64 << 10,
    maxBytes: 64 << 20,
    smallBlobs: 200,
    smallMin: 1 << 10,
    smallMax: 8 << 10,
    smallConcurrency: 4,
    churnEveryMs: 20_000,
    downMs: 5_000,
    cacheBytes: 32 << 20,
    rssTolerance: 0.1,
    settleMs: 30_000,
    log: values.json ? (l) => console.error(l) : (l) => console.log(l),
  })
  const doc = { bench: "soak", date: new Date().toISOString(), node: process.version, ...report }
  mkdirSync(RESULTS, { recursive: true })
  const file = join(RESULTS, `soak-${doc.date.slice(0, 10)}.json`)
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`)
  if (values.json) console.log(JSON.stringify(doc, null, 2))
  else console.log(`\n${formatSoak(report)}\n(written to ${file})`)
  process.exitCode = report.ok ? 0 : 1
} finally {
  await server.stop()
  await rm(root, { recursive: true, force: true })
}
