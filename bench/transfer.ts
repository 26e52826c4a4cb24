/**
 * bench/transfer: blob transfer between node processes over one local nats-server
 * (JetStream on), each number beside its baseline measured in the same run, round-robin:
 *
 *  1. 1 GiB A→B, cold: `blobs.read` consumed and `fetchBlob` on B, beside raw windowed
 *     pub/sub of 8108-byte frames (W=512, ack every 128; no hashing, no disk) and the
 *     JetStream Object Store with its default client (put on one process, get on another).
 *  2. Peak RSS (`process.resourceUsage().maxRSS`) of the sending and receiving node
 *     processes at 512 MiB and 4 GiB, file-backed stores with a 32 MiB memory cache.
 *  3. Latency of sequential gets of distinct 16 KiB blobs A→B, idle and while node C
 *     pulls a 1 GiB blob from A over and over (fetchBlob, delete, again).
 *  4. Eight readers (two processes, four nodes each, own connection and store) fetching
 *     one 256 MiB blob at once: copies the producer served and the total time, beside one
 *     reader fetching a same-sized blob alone.
 *
 * Every node process, worker and store lives under one temp dir, removed at the end; every
 * step has a timeout and a watchdog bounds the whole run. `BENCH_QUICK=1` shrinks sizes.
 * `BENCH_TRANSFER_ONLY=1,3` runs a subset and `BENCH_TRANSFER_WATCHDOG_S=60` shortens the
 * watchdog, `BENCH_TRANSFER_PATHS=fetch,raw` runs only those paths of step 1 (all for development); `BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=…"`
 * profiles every worker process, and `BENCH_WORKER_LOG=/tmp/workers.log` collects what the
 * workers print (e.g. with `BENCH_WORKER_NODE_ARGS=--trace-gc`).
 */
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { mkdtemp, rm, statfs } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startNatsServer } from "../test/support/nats-server.ts"
import { median, mbps, ratio, report } from "./lib.ts"
import { BENCH_V8_FLAGS, Worker, allWorkersExited, killAllWorkers, now } from "./workers/proc.ts"
import { benchTunesMalloc } from "./workers/measure.ts"

const MIB = 1024 * 1024
const GIB = 1024 * MIB
const FRAME_BYTES = 8108
const WINDOW_FRAMES = 512
const ACK_EVERY = 128

export interface TransferBenchOptions {
  quick?: boolean
}

interface Sizes {
  big: number
  reps1: number
  /** Object Store put+get runs in the first `osReps` repetitions only (it is slow). */
  osReps: number
  rssSizes: [number, number]
  rssCacheBytes: number
  smallCount: number
  smallBytes: number
  reps3: number
  readers: number
  readersBlob: number
  watchdogMs: number
}

const FULL: Sizes = {
  big: GIB,
  reps1: 5,
  osReps: 2,
  rssSizes: [512 * MIB, 4 * GIB],
  rssCacheBytes: 32 * MIB,
  smallCount: 200,
  smallBytes: 16 * 1024,
  reps3: 2,
  readers: 8,
  readersBlob: 256 * MIB,
  watchdogMs: 20 * 60_000,
}

const QUICK: Sizes = {
  big: 64 * MIB,
  reps1: 1,
  osReps: 1,
  rssSizes: [32 * MIB, 256 * MIB],
  rssCacheBytes: 32 * MIB,
  smallCount: 50,
  smallBytes: 16 * 1024,
  reps3: 1,
  readers: 8,
  readersBlob: 32 * MIB,
  watchdogMs: 5 * 60_000,
}

/** A generous per-step timeout: 2 min plus the bytes at 8 MB/s. */
const timeoutFor = (bytes: number) => 120_000 + Math.round((bytes / 8e6) * 1000)
const prefixOf = (tag: string) => `dfb${tag}${randomUUID().replaceAll("-", "").slice(0, 10)}`
const sizeLabel = (b: number) => (b >= GIB ? `${b / GIB} GiB` : `${b / MIB} MiB`)
const round = (x: number, d = 1) => Number(x.toFixed(d))

/** Writes every dirty page back (`sync`), so background writeback does not land in a measurement. */
function flushDirtyPages(): void {
  try {
    execFileSync("sync", { stdio: "ignore", timeout: 120_000 })
  } catch {
    // no sync(1) here: measurements just carry whatever writeback happens
  }
}

/** CPU seconds (user + system) nats-server has used so far; NaN where /proc is unavailable. */
function serverCpuS(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? Number.NaN
}

interface Sources {
  cache: number
  disk: number
  peers: Record<string, number>
}
interface ReadResult {
  ms: number
  t0: number
  t1: number
  bytes?: number
  sources: Sources
  maxRssMiB: number
}

export async function runTransferBench(options: TransferBenchOptions = {}): Promise<void> {
  const S = options.quick ? QUICK : FULL
  const only = (process.env.BENCH_TRANSFER_ONLY ?? "1,2,3,4").split(",").map((s) => s.trim())
  const root = await mkdtemp(join(tmpdir(), "df-bench-transfer-"))
  const fs = await statfs(root)
  const freeBytes = fs.bavail * fs.bsize
  console.log(`bench/transfer: ${options.quick ? "QUICK" : "full"} run; temp ${root}; ${round(freeBytes / GIB)} GiB free there; worker V8 flags: ${BENCH_V8_FLAGS.join(" ") || "(defaults)"}; malloc: ${benchTunesMalloc ? "held while busy, every worker" : "glibc defaults"}`)
  const server = await startNatsServer({ jetstream: true }).catch(async (err: unknown) => {
    await rm(root, { recursive: true, force: true })
    throw err
  })
  const url = server.url
  let watchdogFired = false
  const watchdogMs = Number(process.env.BENCH_TRANSFER_WATCHDOG_S ?? 0) * 1000 || S.watchdogMs
  const watchdog = setTimeout(() => {
    watchdogFired = true
    console.error(`bench/transfer: watchdog after ${watchdogMs / 1000} s: killing every worker`)
    killAllWorkers()
  }, watchdogMs)
  const onSignal = () => {
    killAllWorkers()
    void server.stop().finally(() => rm(root, { recursive: true, force: true }).finally(() => process.exit(130)))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  const result: Record<string, unknown> = { quick: !!options.quick, natsServer: "local nats-server, -js, loopback", machine: "2 cores shared; numbers are noisy", workerV8Flags: BENCH_V8_FLAGS.join(" "), workerMalloc: benchTunesMalloc ? "every worker holds freed memory (plugin/allocator.ts), baselines too" : "glibc defaults (BENCH_MALLOC=default)" }
  const goals: Array<{ goal: string; value: number; target: string; pass: boolean }> = []
  const started = now()
  const errors: Record<string, string> = {}
  /** Runs one scenario; a failure is recorded (and the run goes on) rather than losing the others. */
  const section = async (name: string, body: () => Promise<void>) => {
    try {
      await body()
    } catch (err) {
      errors[name] = err instanceof Error ? err.message : String(err)
      console.error(`bench/transfer: scenario ${name} failed: ${errors[name]}`)
      if (watchdogFired) throw err
    }
  }
  try {
    const A = new Worker("A", "node.ts")
    const B = new Worker("B", "node.ts")
    await A.call("open", { name: "a", url, node: "a", prefix: prefixOf("p"), dir: join(root, "a") })

    let bigRef: string | undefined
    let bigPutMs = 0
    const needBig = only.includes("1") || only.includes("3")
    if (needBig) {
      const put = await A.call<{ ref: string; ms: number }>("put", { name: "a", size: S.big, seed: 11 }, timeoutFor(S.big))
      bigRef = put.ref
      bigPutMs = put.ms
      console.log(`A put ${sizeLabel(S.big)} in ${round(put.ms / 1000, 2)} s (${round(mbps(S.big, put.ms))} MB/s)`)
    }

    // ---------- 1. 1 GiB A→B beside raw pub/sub and the Object Store ----------
    if (only.includes("1") && bigRef) await section("1", async () => {
      const kRead = "ours: blobs.read on B (consumed)"
      const kFetch = "ours: fetchBlob on B"
      const kRaw = `raw windowed pub/sub (${FRAME_BYTES} B, W=${WINDOW_FRAMES}, ack ${ACK_EVERY})`
      const kOsPut = "Object Store put (default client)"
      const kOsGet = "Object Store get (default client)"
      const kOsRelay = "Object Store relay put+get (end to end)"
      const kDisk = "B's storage floor: the same bytes written as 4 MiB chunks by the chunk store, no network"
      const runs: Record<string, number[]> = { [kRead]: [], [kFetch]: [], [kRaw]: [], [kOsPut]: [], [kOsGet]: [], [kOsRelay]: [], [kDisk]: [] }
      // CPU seconds per GiB moved: sending process, receiving process, nats-server
      const cpu: Record<string, { sender: number[]; receiver: number[]; server: number[] }> = {}
      const addCpu = (k: string, sender: number, receiver: number, server: number) => {
        const c = (cpu[k] ??= { sender: [], receiver: [], server: [] })
        const gib = S.big / GIB
        // NaN: not applicable (or /proc unavailable for nats-server)
        if (!Number.isNaN(sender)) c.sender.push(round(sender / gib, 2))
        if (!Number.isNaN(receiver)) c.receiver.push(round(receiver / gib, 2))
        if (!Number.isNaN(server)) c.server.push(round(server / gib, 2))
      }
      // page faults per GiB in the reader: fresh memory touched (each ~11 µs of CPU on this VM)
      const faults: Record<string, number[]> = { [kRead]: [], [kFetch]: [] }
      const rss: Record<string, number[]> = { "B (blobs.read, default cacheBytes)": [], "B (fetchBlob, default cacheBytes)": [], "raw pub": [], "raw sub": [], "Object Store put": [], "Object Store get": [] }
      const peersSeen: Array<Record<string, number>> = []
      // stores are removed when step 1 ends, not between runs: on this ext4 (no journal) every
      // file created within minutes of a mass delete scans the freed inodes (docs/PERFORMANCE.md)
      const leftovers: string[] = []
      const ours = async (r: number, mode: "read" | "fetch") => {
        const prefix = prefixOf(mode === "read" ? "r" : "f")
        await A.call("reopen", { name: "a", prefix })
        const name = `b1${mode[0]}${r}`
        await B.call("open", { name, url, node: name, prefix, dir: join(root, name) })
        await B.call("awaitHolders", { name, refs: [bigRef] })
        const [a0, b0, s0] = [await A.call<{ cpuS: number }>("rss"), await B.call<{ cpuS: number; minorFaults: number }>("rss"), serverCpuS(server.pid)]
        const res = await B.call<ReadResult>(mode, { name, ref: bigRef }, timeoutFor(S.big))
        const [a1, b1, s1] = [await A.call<{ cpuS: number }>("rss"), await B.call<{ cpuS: number; minorFaults: number }>("rss"), serverCpuS(server.pid)]
        faults[mode === "read" ? kRead : kFetch]!.push(round((b1.minorFaults - b0.minorFaults) / (S.big / GIB)))
        await B.call("close", { name })
        leftovers.push(join(root, name))
        const k = mode === "read" ? kRead : kFetch
        runs[k]!.push(round(mbps(S.big, res.ms)))
        addCpu(k, a1.cpuS - a0.cpuS, b1.cpuS - b0.cpuS, s1 - s0)
        rss[mode === "read" ? "B (blobs.read, default cacheBytes)" : "B (fetchBlob, default cacheBytes)"]!.push(res.maxRssMiB)
        peersSeen.push(res.sources.peers)
      }
      const tasks: Array<[string, (r: number) => Promise<void>]> = [
        [
          "raw",
          async (r) => {
            const subject = `rawbench.${r}.${randomUUID().slice(0, 8)}`
            const sub = new Worker(`raw-sub-${r}`, "raw-pubsub.ts", ["sub", url, subject, String(ACK_EVERY)])
            await sub.line((l) => l === "ready")
            const s0 = serverCpuS(server.pid)
            const pub = new Worker(`raw-pub-${r}`, "raw-pubsub.ts", ["pub", url, subject, String(S.big), String(FRAME_BYTES), String(WINDOW_FRAMES)])
            type Out = { t0: number; t1: number; bytes: number; cpuS: number; maxRssMiB: number }
            const [p, s] = await Promise.all([pub.json<Out>(timeoutFor(S.big)), sub.json<Out>(timeoutFor(S.big))])
            const s1 = serverCpuS(server.pid)
            await Promise.all([pub.stop(), sub.stop()])
            if (s.bytes !== S.big) throw new Error(`raw pub/sub lost bytes: ${s.bytes} of ${S.big}`)
            runs[kRaw]!.push(round(mbps(S.big, s.t1 - p.t0)))
            addCpu(kRaw, p.cpuS, s.cpuS, s1 - s0)
            rss["raw pub"]!.push(p.maxRssMiB)
            rss["raw sub"]!.push(s.maxRssMiB)
          },
        ],
        ["read", (r) => ours(r, "read")],
        [
          "disk",
          async (r) => {
            const res = await B.call<{ ms: number; cpuS: number }>("diskWrite", { dir: join(root, `disk${r}`), size: S.big, seed: 5 }, timeoutFor(S.big))
            leftovers.push(join(root, `disk${r}`))
            runs[kDisk]!.push(round(mbps(S.big, res.ms)))
            addCpu(kDisk, Number.NaN, res.cpuS, Number.NaN)
          },
        ],
        ["fetch", (r) => ours(r, "fetch")],
        [
          "objstore",
          async (r) => {
            const bucket = `dfbench${r}${randomUUID().slice(0, 8)}`
            type Out = { ms: number; bytes: number; cpuS: number; maxRssMiB: number }
            const s0 = serverCpuS(server.pid)
            const put = new Worker(`os-put-${r}`, "objstore.ts", ["put", url, bucket, "blob", String(S.big), "11"])
            const p = await put.json<Out>(timeoutFor(S.big) * 2)
            await put.stop()
            const s1 = serverCpuS(server.pid)
            const get = new Worker(`os-get-${r}`, "objstore.ts", ["get", url, bucket, "blob"])
            const g = await get.json<Out>(timeoutFor(S.big) * 2)
            await get.stop()
            const s2 = serverCpuS(server.pid)
            runs[kOsPut]!.push(round(mbps(S.big, p.ms)))
            runs[kOsGet]!.push(round(mbps(S.big, g.ms)))
            runs[kOsRelay]!.push(round(mbps(S.big, p.ms + g.ms)))
            addCpu(kOsPut, p.cpuS, Number.NaN, s1 - s0)
            addCpu(kOsGet, Number.NaN, g.cpuS, s2 - s1)
            rss["Object Store put"]!.push(p.maxRssMiB)
            rss["Object Store get"]!.push(g.maxRssMiB)
          },
        ],
      ]
      // BENCH_TRANSFER_PATHS=fetch,raw runs only those paths (development; ratios of the rest are NaN)
      const paths = process.env.BENCH_TRANSFER_PATHS?.split(",").map((s) => s.trim())
      for (let r = 0; r < S.reps1; r++) {
        // round-robin, starting one task later each repetition
        for (let i = 0; i < tasks.length; i++) {
          const [label, run] = tasks[(i + r) % tasks.length]!
          if (label === "objstore" && r >= S.osReps) continue
          if (paths !== undefined && !paths.includes(label)) continue
          // the previous task's dirty pages (the Object Store's file store, A's put) are written
          // back now, not during this task's measurement
          flushDirtyPages()
          const t = now()
          await run(r)
          console.log(`  1: rep ${r + 1}/${S.reps1} ${label} done in ${round((now() - t) / 1000, 1)} s`)
        }
      }
      const med = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, { mbps: round(median(v)), runs: v }]))
      const m = (k: string) => med[k]!.mbps
      const ratios = {
        "blobs.read / raw (goal ≥ 0.8)": ratio(m(kRead), m(kRaw)),
        "fetchBlob / raw (goal ≥ 0.8)": ratio(m(kFetch), m(kRaw)),
        "blobs.read / Object Store get (goal ≥ 5)": ratio(m(kRead), m(kOsGet)),
        "fetchBlob / Object Store get (goal ≥ 5)": ratio(m(kFetch), m(kOsGet)),
        "blobs.read / Object Store relay put+get (info)": ratio(m(kRead), m(kOsRelay)),
        "blobs.read / B's storage floor (info)": ratio(m(kRead), m(kDisk)),
      }
      const goal = (name: string, value: number, target: string, pass: boolean) => goals.push({ goal: name, value, target, pass })
      goal("1. blobs.read / raw", ratios["blobs.read / raw (goal ≥ 0.8)"], "≥ 0.8", ratios["blobs.read / raw (goal ≥ 0.8)"] >= 0.8)
      goal("1. fetchBlob / raw", ratios["fetchBlob / raw (goal ≥ 0.8)"], "≥ 0.8", ratios["fetchBlob / raw (goal ≥ 0.8)"] >= 0.8)
      goal("1. blobs.read / Object Store get", ratios["blobs.read / Object Store get (goal ≥ 5)"], "≥ 5", ratios["blobs.read / Object Store get (goal ≥ 5)"] >= 5)
      goal("1. fetchBlob / Object Store get", ratios["fetchBlob / Object Store get (goal ≥ 5)"], "≥ 5", ratios["fetchBlob / Object Store get (goal ≥ 5)"] >= 5)
      const medCpu = (xs: number[]) => (xs.length ? { median: round(median(xs), 2), runs: xs } : null)
      result.transfer1 = {
        what: `${sizeLabel(S.big)} A→B cold (B holds nothing), separate processes, one nats-server; MB/s = 10^6 B/s end to end; median of ${S.reps1} round-robin reps (Object Store: ${Math.min(S.osReps, S.reps1)}); A and B use the default cacheBytes`,
        sizeBytes: S.big,
        reps: S.reps1,
        producerPutMbps: round(mbps(S.big, bigPutMs)),
        mbps: med,
        ratios,
        cpuSecondsPerGiB: Object.fromEntries(Object.entries(cpu).map(([k, c]) => [k, { sender: medCpu(c.sender), receiver: medCpu(c.receiver), natsServer: medCpu(c.server) }])),
        receiverMinorFaultsPerGiB: Object.fromEntries(Object.entries(faults).map(([k, v]) => [k, medCpu(v)])),
        peakRssMiB: Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, v.length ? Math.max(...v) : null])),
        bytesFromPeers: peersSeen,
      }
      await Promise.all(leftovers.map((d) => rm(d, { recursive: true, force: true })))
    })

    // ---------- 3. small-get latency, idle vs while C pulls a big blob from A ----------
    if (only.includes("3") && bigRef) await section("3", async () => {
      const C = new Worker("C", "node.ts")
      type Phase = "idle" | "busy"
      const lat: Record<Phase, number[]> = { idle: [], busy: [] }
      const rr: Record<Phase, number[]> = { idle: [], busy: [] }
      const perRep: Array<Record<string, unknown>> = []
      let pulled = { bytes: 0, ms: 0, loops: 0 }
      const rrSubject = `dfbench.echo.${randomUUID().slice(0, 8)}`
      await A.call("echo", { name: "a", subject: rrSubject, size: S.smallBytes })
      for (let r = 0; r < S.reps3; r++) {
        const prefix = prefixOf("l")
        await A.call("reopen", { name: "a", prefix })
        const b = `b3n${r}`
        const c = `c3n${r}`
        await Promise.all([
          B.call("open", { name: b, url, node: b, prefix, dir: join(root, b) }),
          C.call("open", { name: c, url, node: c, prefix, dir: join(root, c) }),
        ])
        await C.call("awaitHolders", { name: c, refs: [bigRef] })
        const phases: Phase[] = r % 2 === 0 ? ["idle", "busy"] : ["busy", "idle"]
        for (const phase of phases) {
          const seed = 100_000 + r * 10_000 + (phase === "busy" ? 5_000 : 0)
          const { refs } = await A.call<{ refs: string[] }>("putMany", { name: "a", count: S.smallCount, size: S.smallBytes, seed })
          await B.call("awaitHolders", { name: b, refs })
          if (phase === "busy") await C.call("pullLoop", { name: c, ref: bigRef }, timeoutFor(S.big))
          const res = await B.call<{ lat: number[]; rr: number[] }>("gets", { name: b, refs, rrSubject }, 300_000)
          if (phase === "busy") {
            const p = await C.call<{ bytes: number; ms: number; loops: number }>("pullStop", { name: c }, 60_000)
            pulled = { bytes: pulled.bytes + p.bytes, ms: pulled.ms + p.ms, loops: pulled.loops + p.loops }
          }
          lat[phase].push(...res.lat)
          rr[phase].push(...res.rr)
          const row = { rep: r + 1, phase, getP50Ms: round(pct(res.lat, 0.5), 2), getP99Ms: round(pct(res.lat, 0.99), 2), getMaxMs: round(Math.max(...res.lat), 2), rrP50Ms: round(pct(res.rr, 0.5), 2), rrP99Ms: round(pct(res.rr, 0.99), 2) }
          perRep.push(row)
          console.log(`  3: rep ${r + 1}/${S.reps3} ${phase}: ${JSON.stringify(row)}`)
        }
        await Promise.all([B.call("close", { name: b, remove: true }), C.call("close", { name: c, remove: true })])
      }
      await C.stop()
      const summary = (xs: number[]) => ({ n: xs.length, p50Ms: round(pct(xs, 0.5), 2), p99Ms: round(pct(xs, 0.99), 2), maxMs: round(Math.max(...xs), 2) })
      const r99 = ratio(pct(lat.busy, 0.99), pct(lat.idle, 0.99))
      goals.push({ goal: "3. small-get p99 busy / idle", value: r99, target: "≤ 3", pass: r99 <= 3 })
      result.smallGets = {
        what: `${S.smallCount} sequential gets of distinct ${S.smallBytes / 1024} KiB blobs A→B per phase (B does not hold them; each get fetches, verifies, stores and commits), ${S.reps3} rep(s), idle vs while C pulls a ${sizeLabel(S.big)} blob from A in a loop (fetchBlob, delete, again). Before each get, B makes one bare NATS request to A answered with ${S.smallBytes / 1024} KiB (baseline: what the load does to NATS itself)`,
        get: { idle: summary(lat.idle), busy: summary(lat.busy) },
        bareRequestReply: { idle: summary(rr.idle), busy: summary(rr.busy) },
        ratios: {
          "get p99 busy / idle (goal ≤ 3)": r99,
          "get p50 busy / idle (info)": ratio(pct(lat.busy, 0.5), pct(lat.idle, 0.5)),
          "bare request/reply p99 busy / idle (baseline)": ratio(pct(rr.busy, 0.99), pct(rr.idle, 0.99)),
          "get p50 / bare request/reply p50, idle (info)": ratio(pct(lat.idle, 0.5), pct(rr.idle, 0.5)),
        },
        backgroundPull: { bytes: pulled.bytes, mbps: round(mbps(pulled.bytes, pulled.ms)), completedPulls: pulled.loops },
        perRep,
      }
    })

    // ---------- 4. eight readers of one blob ----------
    if (only.includes("4")) await section("4", async () => {
      const R = [new Worker("R1", "node.ts"), new Worker("R2", "node.ts")]
      const prefix = prefixOf("m")
      await A.call("reopen", { name: "a", prefix })
      const solo = await A.call<{ ref: string }>("put", { name: "a", size: S.readersBlob, seed: 41 }, timeoutFor(S.readersBlob))
      const shared = await A.call<{ ref: string }>("put", { name: "a", size: S.readersBlob, seed: 42 }, timeoutFor(S.readersBlob))
      // baseline: one reader alone (a different blob of the same size, so it never serves the eight)
      await R[0]!.call("open", { name: "solo", url, node: "solo", prefix, dir: join(root, "solo"), cacheBytes: 64 * MIB })
      await R[0]!.call("awaitHolders", { name: "solo", refs: [solo.ref] })
      const s0 = await A.call<{ bytesServed: number }>("stats", { name: "a" })
      const soloRes = await R[0]!.call<ReadResult>("fetch", { name: "solo", ref: solo.ref }, timeoutFor(S.readersBlob))
      const s1 = await A.call<{ bytesServed: number }>("stats", { name: "a" })
      await R[0]!.call("close", { name: "solo", remove: true })
      const readers = Array.from({ length: S.readers }, (_, i) => ({ w: R[i % R.length]!, name: `rd${i}` }))
      await Promise.all(readers.map((x) => x.w.call("open", { name: x.name, url, node: x.name, prefix, dir: join(root, x.name), cacheBytes: 64 * MIB })))
      await Promise.all(readers.map((x) => x.w.call("awaitHolders", { name: x.name, refs: [shared.ref] })))
      const before = await A.call<{ bytesServed: number }>("stats", { name: "a" })
      const t0 = now()
      const res = await Promise.all(readers.map((x) => x.w.call<ReadResult>("fetch", { name: x.name, ref: shared.ref }, timeoutFor(S.readersBlob * S.readers))))
      const totalMs = Math.max(...res.map((x) => x.t1)) - t0
      const after = await A.call<{ bytesServed: number }>("stats", { name: "a" })
      const fromA = res.reduce((sum, x) => sum + (x.sources.peers.a ?? 0), 0)
      const copies = round((after.bytesServed - before.bytesServed) / S.readersBlob, 2)
      await Promise.all(readers.map((x) => x.w.call("close", { name: x.name, remove: true })))
      await Promise.all(R.map((w) => w.stop()))
      goals.push({ goal: "4. producer bytes served, in copies of the blob", value: copies, target: "≤ 2", pass: copies <= 2 })
      result.manyReaders = {
        what: `${S.readers} reader nodes (2 processes × ${S.readers / 2}, own connection and store each, cacheBytes 64 MiB) fetchBlob one ${sizeLabel(S.readersBlob)} blob at once from producer A`,
        blobBytes: S.readersBlob,
        producerServedCopies: copies,
        producerServedBytes: after.bytesServed - before.bytesServed,
        readersReportFromProducerCopies: round(fromA / S.readersBlob, 2),
        totalMs: Math.round(totalMs),
        aggregateMbps: round(mbps(S.readersBlob * S.readers, totalMs)),
        perReaderMs: res.map((x) => Math.round(x.ms)),
        perReaderPeers: res.map((x) => Object.fromEntries(Object.entries(x.sources.peers).map(([k, v]) => [k, round(v / MIB, 1)]))),
        baselineOneReader: { ms: Math.round(soloRes.ms), mbps: round(mbps(S.readersBlob, soloRes.ms)), producerServedCopies: round((s1.bytesServed - s0.bytesServed) / S.readersBlob, 2) },
        ratios: {
          "total time / one reader alone (info; 8 = no sharing gain, CPU-bound on 2 cores)": ratio(totalMs, soloRes.ms),
        },
      }
    })
    await A.stop()
    await B.stop()

    // ---------- 2. peak RSS at two sizes, fresh processes ----------
    if (only.includes("2")) await section("2", async () => {
      const [small, large] = S.rssSizes
      const need = 2 * large + 2 * GIB
      const sizes = freeBytes > need ? [small, large] : [small]
      if (sizes.length === 1) console.log(`  2: only ${round(freeBytes / GIB)} GiB free: skipping ${sizeLabel(large)}`)
      const rows: Record<string, Record<string, number>> = {}
      for (const size of sizes) {
        const label = sizeLabel(size)
        const As = new Worker(`A-rss-${label}`, "node.ts")
        const p1 = prefixOf("s")
        await As.call("open", { name: "a", url, node: "a", prefix: p1, dir: join(root, "rss-a"), cacheBytes: S.rssCacheBytes })
        const aIdle = await As.call<{ maxRssMiB: number }>("rss")
        const put = await As.call<{ ref: string; ms: number; maxRssMiB: number }>("put", { name: "a", size, seed: 77 }, timeoutFor(size))
        const Br = new Worker(`B-read-${label}`, "node.ts")
        await Br.call("open", { name: "b", url, node: "b", prefix: p1, dir: join(root, "rss-b-read"), cacheBytes: S.rssCacheBytes })
        await Br.call("awaitHolders", { name: "b", refs: [put.ref] })
        const rd = await Br.call<ReadResult>("read", { name: "b", ref: put.ref }, timeoutFor(size))
        await Br.stop()
        const p2 = prefixOf("s")
        await As.call("reopen", { name: "a", prefix: p2 })
        const Bf = new Worker(`B-fetch-${label}`, "node.ts")
        await Bf.call("open", { name: "b", url, node: "b", prefix: p2, dir: join(root, "rss-b-fetch"), cacheBytes: S.rssCacheBytes })
        await Bf.call("awaitHolders", { name: "b", refs: [put.ref] })
        const fe = await Bf.call<ReadResult>("fetch", { name: "b", ref: put.ref }, timeoutFor(size))
        await Bf.stop()
        const aRss = await As.call<{ maxRssMiB: number }>("rss")
        await As.stop()
        rows[label] = {
          "sender idle (after open)": aIdle.maxRssMiB,
          "sender after put": put.maxRssMiB,
          "sender after serving two reads": aRss.maxRssMiB,
          "receiver blobs.read": rd.maxRssMiB,
          "receiver fetchBlob": fe.maxRssMiB,
          "put MB/s": round(mbps(size, put.ms)),
          "blobs.read MB/s": round(mbps(size, rd.ms)),
          "fetchBlob MB/s": round(mbps(size, fe.ms)),
        }
        console.log(`  2: ${label}: ${JSON.stringify(rows[label])}`)
      }
      const ratios: Record<string, number> = {}
      const lo = rows[sizeLabel(small)]
      const hi = rows[sizeLabel(large)]
      if (lo && hi) {
        for (const k of ["receiver blobs.read", "receiver fetchBlob", "sender after serving two reads"]) {
          const r = ratio(hi[k]!, lo[k]!)
          ratios[`${k}: RSS@${sizeLabel(large)} / RSS@${sizeLabel(small)} (goal ≤ 1.1)`] = r
          goals.push({ goal: `2. ${k} RSS ${sizeLabel(large)} / ${sizeLabel(small)}`, value: r, target: "≤ 1.1", pass: r <= 1.1 })
        }
      }
      result.peakRss = {
        what: `peak RSS (process.resourceUsage().maxRSS, MiB) of fresh node processes; file-backed stores, cacheBytes ${S.rssCacheBytes / MIB} MiB on every node; the sender's peak includes its own put`,
        peakRssMiB: rows,
        ratios,
      }
    })

    result.goals = goals
    result.totalSeconds = round((now() - started) / 1000, 0)
    if (Object.keys(errors).length) result.errors = errors
    report("transfer", result)
    printGoals(goals)
    if (Object.keys(errors).length) throw new Error(`bench/transfer: scenario(s) ${Object.keys(errors).join(", ")} failed: ${Object.values(errors).join("; ")}`)
  } catch (err) {
    if (watchdogFired) throw new Error(`bench/transfer: watchdog (${watchdogMs / 1000} s) fired`, { cause: err })
    throw err
  } finally {
    clearTimeout(watchdog)
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    killAllWorkers()
    await allWorkersExited()
    await server.stop()
    await rm(root, { recursive: true, force: true })
  }
}

function printGoals(goals: Array<{ goal: string; value: number; target: string; pass: boolean }>): void {
  console.log("\ngoal                                                      value   target  ")
  for (const g of goals) console.log(`${g.goal.padEnd(56)} ${String(g.value).padStart(7)}   ${g.target.padEnd(7)} ${g.pass ? "ok" : "MISSED"}`)
}
