/**
 * The soak engine, shared by `npm run soak` (bench/soak.ts) and test/integration/soak.test.ts.
 *
 * Four nodes, each in its own process with its own store dir and NATS connection. Every blob
 * is put on two of them ("homes"), so with at most one node down a read can always finish.
 * For `seconds`, `concurrency` transfers of mixed sizes (streamed `read`s, and `fetchBlob`
 * then a local read) plus a stream of small `get`s run at once, each on a node that does not
 * hold the blob; the reader deletes it afterwards, so it stays a non-holder. The engine checks
 * every byte itself: the sha256 of what the reader got against the sha256 of the seeded
 * content it computed on its own. A read that fails must fail with a typed code and is retried
 * (another reader may take it) until it succeeds; both are counted.
 *
 * Churn: every `churnEveryMs` one node leaves for `downMs` and joins again on the same dir,
 * one at a time. Nodes 0 and 1 leave gracefully (the process closes its Blobs and connection
 * and later opens them again: RSS and fds of one process span the whole run); nodes 2 and 3
 * are killed with SIGKILL and a new process opens the store (crash recovery under load).
 *
 * Measured: every node's RSS each second (flat: the last quarter's mean within `rssTolerance`
 * of the second quarter's, for each process that lived through the load, and the driver);
 * fds, NATS subscriptions and timers after warm-up and again after the load stopped and the
 * nodes settled. A node restarted after SIGKILL is held to the baseline its first process set:
 * same code, same options, same kind of state.
 */
import { createHash } from "node:crypto"
import { mkdir, rm } from "node:fs/promises"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { seededStream } from "./bytes.ts"
import { seededRandom } from "./random.ts"
import { SoakCallError, SoakProc } from "./soak-proc.ts"

export interface SoakOptions {
  /** A running nats-server. */
  url: string
  /** Subject prefix, fresh per run. */
  prefix: string
  /** Store dirs go under here (the caller removes it). */
  root: string
  /** Load duration (after setup and warm-up). */
  seconds: number
  /** The same load before it, without churn and not measured. */
  warmupSeconds: number
  seed: number
  /** Transfers in flight at once. */
  concurrency: number
  /** Blobs for the transfers: sizes log-uniform in [minBytes, maxBytes]. */
  blobs: number
  minBytes: number
  maxBytes: number
  /** Small blobs for the gets: sizes uniform in [smallMin, smallMax]. */
  smallBlobs: number
  smallMin: number
  smallMax: number
  /** Small gets in flight at once. */
  smallConcurrency: number
  churnEveryMs: number
  downMs: number
  /** Each node's memory cache. */
  cacheBytes: number
  /** Allowed drift of the RSS means (0.10: within 10 %). */
  rssTolerance: number
  /** How long settling (transfers drained, resources back to baseline) may take. */
  settleMs: number
  /** Progress lines. */
  log?: (line: string) => void
}

export interface NodeResources {
  rss: number
  fds: { total: number; index: number }
  subs: number
  timers: number
  resources: Record<string, number>
}

interface Probe extends NodeResources {
  pid: number
  heap: number
  sending: number
  fetching: number
  inFlight: number
  holderFailures: Record<string, number>
}

export interface NodeReport {
  node: string
  leave: "close" | "kill"
  pids: number[]
  leaves: number
  /** RSS (bytes) after warm-up, means of the load's second and last quarters, after settling. */
  rss: { start: number; q2: number; q4: number; end: number; flat: boolean | "restarted" }
  /** RSS each second of the load, MiB, per process (pid order). */
  rssSeries: number[][]
  start: NodeResources
  end: NodeResources
  /** fds, subscriptions, timers and other handles no more than at the start. */
  backToBaseline: boolean
  /** Holders this node's reads abandoned or blamed since it last joined, by code (failovers inside reads that then finished). */
  holderFailures: Record<string, number>
}

export interface SoakReport {
  seconds: number
  warmupSeconds: number
  seed: number
  concurrency: number
  /** Transfers and small gets that ended verified. */
  transfers: number
  smallGets: number
  bytesVerified: number
  /** Reads that succeeded with the wrong bytes (must be 0). */
  wrongBytes: number
  /** Failed attempts by code (Dataforts codes; NODE_GONE: the reader process was killed under it). */
  errors: Record<string, number>
  /** The first two messages of each code, to tell why. */
  errorSamples: Record<string, string[]>
  /** Failed attempts without a typed code (must be 0), with the first few messages. */
  untyped: number
  untypedSamples: string[]
  retries: number
  /** Reads that never succeeded within their attempts (must be 0). */
  unrecovered: number
  leaves: number
  joins: number
  nodes: NodeReport[]
  driver: { rss: { start: number; q2: number; q4: number; end: number; flat: boolean } }
  /** Every check passed. */
  ok: boolean
}

interface BlobSpec {
  ref: string
  size: number
  sha: string
  homes: [number, number]
  small: boolean
}

interface Slot {
  index: number
  name: string
  dir: string
  leave: "close" | "kill"
  proc: SoakProc
  up: boolean
  pids: number[]
  leaves: number
  /** RSS samples of the load window: time, pid, bytes. */
  samples: Array<{ t: number; pid: number; rss: number }>
  start?: Probe
  end?: Probe
}

const N = 4
/** The six pairs of four nodes: blob i lives on PAIRS[i % 6]. */
const PAIRS: Array<[number, number]> = [[0, 1], [2, 3], [0, 2], [1, 3], [0, 3], [1, 2]]
const ATTEMPTS = 10

function expectedSha(size: number, seed: number): Promise<string> {
  return (async () => {
    const h = createHash("sha256")
    for await (const part of seededStream(size, seed)) h.update(part)
    return h.digest("hex")
  })()
}

const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length)

/** Means of the second and last quarters of `samples` over [t0, t1]. */
function quarters(samples: Array<{ t: number; rss: number }>, t0: number, t1: number): { q2: number; q4: number } {
  const q = (t1 - t0) / 4
  return {
    q2: mean(samples.filter((s) => s.t >= t0 + q && s.t < t0 + 2 * q).map((s) => s.rss)),
    q4: mean(samples.filter((s) => s.t >= t0 + 3 * q).map((s) => s.rss)),
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {})
  const slots: Slot[] = []
  const nodeArgs = (s: Slot) => ({ url: o.url, prefix: o.prefix, node: s.name, dir: s.dir, cacheBytes: o.cacheBytes })
  const report: SoakReport = {
    seconds: o.seconds,
    warmupSeconds: o.warmupSeconds,
    seed: o.seed,
    concurrency: o.concurrency,
    transfers: 0,
    smallGets: 0,
    bytesVerified: 0,
    wrongBytes: 0,
    errors: {},
    errorSamples: {},
    untyped: 0,
    untypedSamples: [],
    retries: 0,
    unrecovered: 0,
    leaves: 0,
    joins: 0,
    nodes: [],
    driver: { rss: { start: 0, q2: 0, q4: 0, end: 0, flat: false } },
    ok: false,
  }
  try {
    // ---- setup: four node processes, every blob on its two homes
    for (let i = 0; i < N; i++) {
      const name = `s${i}`
      const dir = join(o.root, name)
      await mkdir(dir, { recursive: true })
      slots.push({ index: i, name, dir, leave: i < 2 ? "close" : "kill", proc: new SoakProc(name), up: false, pids: [], leaves: 0, samples: [] })
    }
    await Promise.all(
      slots.map(async (s) => {
        await s.proc.call("open", nodeArgs(s))
        s.pids.push(s.proc.pid)
        s.up = true
      }),
    )
    log(`soak: ${N} node processes up`)
    const rand = seededRandom(o.seed)
    const specs: Array<{ size: number; seed: number; small: boolean }> = []
    for (let i = 0; i < o.blobs; i++) specs.push({ size: Math.round(Math.exp(Math.log(o.minBytes) + rand() * (Math.log(o.maxBytes) - Math.log(o.minBytes)))), seed: o.seed * 1000 + i + 1, small: false })
    for (let i = 0; i < o.smallBlobs; i++) specs.push({ size: o.smallMin + Math.floor(rand() * (o.smallMax - o.smallMin + 1)), seed: o.seed * 1000 + o.blobs + i + 1, small: true })
    const blobs: BlobSpec[] = []
    let putNext = 0
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (putNext < specs.length) {
          const k = putNext++
          const spec = specs[k]!
          const homes = PAIRS[k % PAIRS.length]!
          const [a, b, sha] = await Promise.all([
            slots[homes[0]]!.proc.call<{ ref: string }>("put", { size: spec.size, seed: spec.seed }, 120_000),
            slots[homes[1]]!.proc.call<{ ref: string }>("put", { size: spec.size, seed: spec.seed }, 120_000),
            expectedSha(spec.size, spec.seed),
          ])
          if (a.ref !== b.ref) throw new Error(`the two homes of blob ${k} disagree on its ref: ${a.ref} vs ${b.ref}`)
          blobs[k] = { ref: a.ref, size: spec.size, sha, homes, small: spec.small }
        }
      }),
    )
    await Promise.all(slots.map((s) => s.proc.call("flush")))
    const big = blobs.filter((b) => !b.small)
    const small = blobs.filter((b) => b.small)
    const homeRefs = (i: number) => blobs.filter((b) => b.homes.includes(i)).map((b) => b.ref)
    log(`soak: ${big.length} blobs (${(big.reduce((n, b) => n + b.size, 0) / 2 ** 20).toFixed(0)} MiB) and ${small.length} small ones on two homes each`)

    // ---- one read: verified against the engine's own hash, retried while it fails typed
    // one read of a blob per node at a time (its delete afterwards must not pull the bytes
    // from under a second read of the same blob there)
    const busy = new Map<string, number>()
    /** Blobs a retry is waiting to read again: fresh picks leave them alone, so retries are not starved. */
    const retrying = new Map<string, number>()
    const freeReaders = (b: BlobSpec) => slots.filter((s) => s.up && !b.homes.includes(s.index) && !busy.has(`${b.ref}@${s.index}`))
    const pickReader = (b: BlobSpec, r: () => number): Slot | undefined => {
      const free = freeReaders(b)
      return free.length === 0 ? undefined : free[Math.floor(r() * free.length)]
    }
    /** A blob of `from` that some reader can take now, else undefined (the caller waits a little). */
    const pickBlob = (from: BlobSpec[], r: () => number): BlobSpec | undefined => {
      for (let tries = 0; tries < 8; tries++) {
        const b = from[Math.floor(r() * from.length)]!
        if (!retrying.has(b.ref) && freeReaders(b).length > 0) return b
      }
      return undefined
    }
    const readVerified = async (b: BlobSpec, mode: "read" | "fetch" | "get", r: () => number): Promise<boolean> => {
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        if (attempt > 1) report.retries++
        let reader = pickReader(b, r)
        const holdBack = reader === undefined && attempt > 1
        if (holdBack) retrying.set(b.ref, (retrying.get(b.ref) ?? 0) + 1)
        // bounded: a node down comes back within downMs plus its start, a busy reader finishes its read
        for (const until = Date.now() + 60_000; reader === undefined && Date.now() < until; ) {
          await sleep(50)
          reader = pickReader(b, r)
        }
        if (holdBack) {
          const n = retrying.get(b.ref)! - 1
          if (n > 0) retrying.set(b.ref, n)
          else retrying.delete(b.ref)
        }
        if (reader === undefined) {
          if (report.untypedSamples.length < 10) report.untypedSamples.push(`no reader for ${b.ref} homes ${b.homes} attempt ${attempt}: up ${slots.map((s) => s.up)} busy ${[...busy].filter(([k]) => k.startsWith(b.ref)).map(([k, t]) => `${k.split("@")[1]} for ${Date.now() - t} ms`)}`)
          break
        }
        const key = `${b.ref}@${reader.index}`
        busy.set(key, Date.now())
        try {
          const got = await reader.proc.call<{ sha: string; bytes: number }>("read", { ref: b.ref, mode }, 60_000 + b.size / 1000)
          if (got.sha !== b.sha || got.bytes !== b.size) {
            report.wrongBytes++
            return false
          }
          report.bytesVerified += b.size
          return true
        } catch (err) {
          const e = err as SoakCallError
          const code = e.code ?? e.reason
          if (code === undefined || e.reason === "CALL_TIMEOUT") {
            report.untyped++
            if (report.untypedSamples.length < 5) report.untypedSamples.push(`${reader.name} ${mode} ${b.ref}: ${e.message}`)
          }
          report.errors[code ?? "UNTYPED"] = (report.errors[code ?? "UNTYPED"] ?? 0) + 1
          const seen = (report.errorSamples[code ?? "UNTYPED"] ??= [])
          if (seen.length < 2) seen.push(`${reader.name} ${mode}: ${e.message.slice(0, 300)}`)
          await sleep(100 * attempt)
        } finally {
          busy.delete(key)
        }
      }
      report.unrecovered++
      return false
    }

    /** `concurrency` transfers and `smallConcurrency` small gets until `deadline` (each finishes the read it is in). */
    const load = (deadline: number, salt: number, progress: () => void) => [
      ...Array.from({ length: o.concurrency }, async (_, w) => {
        const r = seededRandom(o.seed * 7919 + w + salt)
        while (Date.now() < deadline) {
          const b = pickBlob(big, r)
          if (b === undefined) {
            await sleep(20)
            continue
          }
          if (await readVerified(b, r() < 0.75 ? "read" : "fetch", r)) report.transfers++
          progress()
        }
      }),
      ...Array.from({ length: o.smallConcurrency }, async (_, w) => {
        const r = seededRandom(o.seed * 104_729 + w + salt)
        while (Date.now() < deadline) {
          const b = pickBlob(small, r)
          if (b === undefined) {
            await sleep(20)
            continue
          }
          if (await readVerified(b, "get", r)) report.smallGets++
        }
      }),
    ]

    // ---- warm-up: the full load for a while without churn, so what grows to a working set
    // (heaps, malloc arenas, pools, lazily opened files and subscriptions) is in the baseline
    await Promise.all(load(Date.now() + o.warmupSeconds * 1000, 1_000_003, () => {}))
    const warmed = { transfers: report.transfers, smallGets: report.smallGets, bytes: report.bytesVerified }
    const probe = (s: Slot) => s.proc.call<Probe>("probe", {}, 20_000)
    await settle(slots, probe, o.settleMs)
    for (const s of slots) s.start = await probe(s)
    const driverStart = process.memoryUsage().rss
    // the warm-up's reads are not the load's
    Object.assign(report, { transfers: 0, smallGets: 0, bytesVerified: 0, retries: 0, errors: {}, errorSamples: {}, untyped: 0, untypedSamples: [], unrecovered: 0 })
    log(`soak: warm (${warmed.transfers} transfers, ${warmed.smallGets} small gets, ${mib(warmed.bytes)} MiB); baseline ${slots.map((s) => `${s.name} rss ${mib(s.start!.rss)} MiB fds ${s.start!.fds.total} subs ${s.start!.subs} timers ${s.start!.timers}`).join(", ")}`)

    // ---- the load
    const t0 = Date.now()
    const deadline = t0 + o.seconds * 1000
    const driverSamples: Array<{ t: number; rss: number }> = []
    const sampler = (async () => {
      while (Date.now() < deadline) {
        const t = Date.now()
        driverSamples.push({ t, rss: process.memoryUsage().rss })
        await Promise.all(
          slots.map(async (s) => {
            if (!s.up) return
            const p = await probe(s).catch(() => undefined)
            if (p) s.samples.push({ t, pid: p.pid, rss: p.rss })
          }),
        )
        await sleep(Math.max(0, t + 1000 - Date.now()))
      }
    })()
    let lastLog = t0
    const progress = () => {
      if (Date.now() - lastLog < 10_000) return
      lastLog = Date.now()
      log(`soak: ${Math.round((Date.now() - t0) / 1000)} s: ${report.transfers} transfers, ${report.smallGets} small gets, ${(report.bytesVerified / 2 ** 30).toFixed(2)} GiB verified, ${report.retries} retries, errors ${JSON.stringify(report.errors)}; rss ${slots.map((s) => `${s.name} ${mib(s.samples.at(-1)?.rss ?? 0)}`).join(" ")} MiB`)
    }
    const churn = (async () => {
      for (let k = 0; ; k++) {
        await sleep(Math.min(o.churnEveryMs, Math.max(0, deadline - Date.now())))
        // a node leaves only when it will be back before the load ends (downMs, and a few s to start)
        if (Date.now() + o.downMs + 5000 >= deadline) return
        const s = slots[k % N]!
        s.up = false
        s.leaves++
        report.leaves++
        if (s.leave === "close") await s.proc.call("close", {}, 30_000)
        else await s.proc.kill()
        await sleep(o.downMs)
        if (s.leave === "kill") s.proc = new SoakProc(s.name)
        await s.proc.call("open", nodeArgs(s), 60_000)
        // a reader killed between its read and its delete kept that blob: it is no holder of it
        if (s.leave === "kill") await s.proc.call("prune", { keep: homeRefs(s.index) }, 60_000)
        if (!s.pids.includes(s.proc.pid)) s.pids.push(s.proc.pid)
        s.up = true
        report.joins++
        log(`soak: ${s.name} ${s.leave === "close" ? "closed and reopened" : "killed and restarted"} (${report.joins} joins)`)
      }
    })()
    await Promise.all([...load(deadline, 0, progress), churn, sampler])
    const t1 = Date.now()
    log(`soak: load stopped ${Math.round((t1 - deadline) / 100) / 10} s after its deadline`)

    // ---- settle, then the end state
    await settle(slots, probe, o.settleMs)
    const deadlineEnd = Date.now() + o.settleMs
    for (const s of slots) {
      for (;;) {
        s.end = await probe(s)
        if (baselineOk(s.start!, s.end) || Date.now() > deadlineEnd) break
        await sleep(250)
      }
    }
    log(`soak: settled in ${Math.round((Date.now() - t1) / 100) / 10} s`)
    const driverEnd = process.memoryUsage().rss
    const dq = quarters(driverSamples, t0, t1)
    report.driver.rss = { start: driverStart, ...dq, end: driverEnd, flat: Math.abs(dq.q4 / dq.q2 - 1) <= o.rssTolerance }
    for (const s of slots) {
      const lived = s.pids.length === 1
      const q = quarters(s.samples.filter((x) => x.pid === s.pids[0]), t0, t1)
      report.nodes.push({
        node: s.name,
        leave: s.leave,
        pids: s.pids,
        leaves: s.leaves,
        rss: { start: s.start!.rss, ...q, end: s.end!.rss, flat: lived ? Math.abs(q.q4 / q.q2 - 1) <= o.rssTolerance : "restarted" },
        rssSeries: s.pids.map((pid) => s.samples.filter((x) => x.pid === pid).map((x) => mib(x.rss))),
        start: pick(s.start!),
        end: pick(s.end!),
        backToBaseline: baselineOk(s.start!, s.end!),
        holderFailures: s.end!.holderFailures,
      })
    }
    report.ok =
      report.wrongBytes === 0 &&
      report.untyped === 0 &&
      report.unrecovered === 0 &&
      report.transfers > 0 &&
      report.driver.rss.flat &&
      report.nodes.every((n) => n.rss.flat !== false && n.backToBaseline)
    return report
  } finally {
    await Promise.all(slots.map((s) => s.proc.stop()))
    await Promise.all(slots.map((s) => rm(s.dir, { recursive: true, force: true })))
  }
}

const mib = (b: number) => Math.round(b / 2 ** 20)

const pick = (p: Probe): NodeResources => ({ rss: p.rss, fds: p.fds, subs: p.subs, timers: p.timers, resources: p.resources })

/** Handles other than timers (sockets, pipes, fs requests) from `getActiveResourcesInfo()`. */
const handles = (p: NodeResources) => Object.entries(p.resources).reduce((n, [k, v]) => (k === "Timeout" ? n : n + v), 0)

function baselineOk(start: Probe, end: Probe): boolean {
  return end.fds.total <= start.fds.total && end.subs <= start.subs && end.timers <= start.timers && handles(end) <= handles(start)
}

/** Waits (bounded) until no node sends or fetches anything. */
async function settle(slots: Slot[], probe: (s: Slot) => Promise<Probe>, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const ps = await Promise.all(slots.map(probe))
    if (ps.every((p) => p.sending === 0 && p.fetching === 0 && p.inFlight === 0)) return
    await sleep(100)
  }
}

/** The report as a table (MiB for memory). */
export function formatSoak(r: SoakReport): string {
  const lines = [
    `soak ${r.seconds} s, seed ${r.seed}, ${r.concurrency} concurrent: ${r.transfers} transfers + ${r.smallGets} small gets, ${(r.bytesVerified / 2 ** 30).toFixed(2)} GiB verified, wrong bytes ${r.wrongBytes}`,
    `errors ${JSON.stringify(r.errors)}, untyped ${r.untyped}, retries ${r.retries}, unrecovered ${r.unrecovered}; ${r.leaves} leaves, ${r.joins} joins`,
    "node  leave  procs  rss start/q2/q4/end MiB    flat       fds start→end (index)   subs    timers  baseline",
  ]
  const row = (n: NodeReport) =>
    [
      n.node.padEnd(5),
      n.leave.padEnd(6),
      String(n.pids.length).padEnd(6),
      [n.rss.start, n.rss.q2, n.rss.q4, n.rss.end].map(mib).join("/").padEnd(26),
      String(n.rss.flat).padEnd(10),
      `${n.start.fds.total}→${n.end.fds.total} (${n.start.fds.index}→${n.end.fds.index})`.padEnd(23),
      `${n.start.subs}→${n.end.subs}`.padEnd(7),
      `${n.start.timers}→${n.end.timers}`.padEnd(7),
      n.backToBaseline ? "yes" : "NO",
    ].join(" ")
  for (const n of r.nodes) lines.push(row(n))
  lines.push(`failovers inside reads that finished, since each node last joined: ${r.nodes.map((n) => `${n.node} ${JSON.stringify(n.holderFailures)}`).join(", ")}`)
  const d = r.driver.rss
  lines.push(`driver rss ${[d.start, d.q2, d.q4, d.end].map(mib).join("/")} MiB, flat ${d.flat}; ${r.ok ? "OK" : "FAILED"}`)
  return lines.join("\n")
}
