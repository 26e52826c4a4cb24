/**
 * `npm run fuzz [-- --cases N] [--seed S] [--only name[,name]] [--jobs J]`: runs every decoder
 * target (test/fuzz/targets.ts) for N cases (default 1,000,000) from one seed, in J child
 * processes (default 1), prints a table and writes bench/results/fuzz-<date>.json (after
 * every decoder, so an interrupted run keeps what it measured). Exit code 1 when any property failed (the report
 * names the seed and path that replay it), 2 for a bad command line.
 */
import { spawn } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { createInterface } from "node:readline"
import fc from "fast-check"
import { type Outcome, checkBytes, checkValid } from "./check.ts"
import { type AnyTarget, casesOf, TARGETS } from "./targets.ts"

interface Row {
  decoder: string
  cases: number
  accepted: number
  rejected: Record<string, number>
  failures: number
  casesPerSecond: number
  seconds: number
  /** CPU ms of the slowest single decode */
  slowestMs: number
  failure?: string
}

function usage(why: string): never {
  console.error(`fuzz: ${why}\nusage: npm run fuzz -- [--cases N] [--seed S] [--only name[,name]] [--jobs J]\ntargets: ${TARGETS.map((t) => t.name).join(", ")}`)
  process.exit(2)
}

function parseArgs(argv: readonly string[]): { cases: number; seed: number; only: string[] | undefined; jobs: number; child: boolean } {
  let cases = 1_000_000
  let jobs = 1
  let child = false
  let seed = Date.now() ^ (Math.random() * 0x7fff_ffff)
  let only: string[] | undefined
  const args = argv.filter((a) => a !== "--")
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--child") {
      child = true
      continue
    }
    const [flag, inline] = args[i]!.split("=", 2) as [string, string | undefined]
    const value = inline ?? args[++i]
    if (value === undefined) usage(`${flag} needs a value`)
    if (flag === "--cases") cases = Number(value)
    else if (flag === "--seed") seed = Number(value)
    else if (flag === "--only") only = value.split(",")
    else if (flag === "--jobs") jobs = Number(value)
    else usage(`unknown option ${flag}`)
  }
  if (!Number.isSafeInteger(cases) || cases < 1) usage(`--cases must be a positive integer`)
  if (!Number.isSafeInteger(seed)) usage(`--seed must be an integer`)
  if (!Number.isSafeInteger(jobs) || jobs < 1) usage(`--jobs must be a positive integer`)
  for (const name of only ?? []) if (!TARGETS.some((t) => t.name === name)) usage(`unknown target ${name}`)
  return { cases, seed: seed | 0, only, jobs, child }
}

function runTarget(t: AnyTarget, cases: number, seed: number): Row {
  const rejected: Record<string, number> = {}
  let counted = 0
  let accepted = 0
  let slowest = 0
  let failing = false
  const t0 = performance.now()
  const details = fc.check(
    fc.property(casesOf(t), (c) => {
      let o: Outcome
      try {
        o = "valid" in c ? checkValid(t, c.valid) : checkBytes(t, c.bytes)
      } catch (e) {
        failing = true // shrinking replays cases: stop counting
        throw e
      }
      if (failing) return
      counted++
      slowest = Math.max(slowest, o.ms)
      if (o.accepted) accepted++
      else rejected[o.code] = (rejected[o.code] ?? 0) + 1
    }),
    { numRuns: cases, seed },
  )
  const seconds = (performance.now() - t0) / 1000
  const row: Row = {
    decoder: t.name,
    cases: counted,
    accepted,
    rejected,
    failures: details.failed ? 1 : 0,
    casesPerSecond: Math.round(counted / seconds),
    seconds: Math.round(seconds * 10) / 10,
    slowestMs: Math.round(slowest * 100) / 100,
  }
  if (details.failed) {
    const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
    row.failure = `${fc.defaultReportMessage(details) ?? "failed"}\n${why}`
  }
  return row
}

const opts = parseArgs(process.argv.slice(2))
const { cases, seed, only, jobs } = opts
const targets = only === undefined ? TARGETS : TARGETS.filter((t) => only.includes(t.name))

if (opts.child) {
  // one worker of --jobs: rows go to the parent as JSON lines
  for (const t of targets) process.stdout.write(`${JSON.stringify(runTarget(t, cases, seed))}\n`)
} else {
  await main()
}

async function main(): Promise<void> {
  console.log(
    `fuzz: ${targets.length} decoders × ${cases.toLocaleString("en")} cases, seed ${seed}, ${jobs} job(s) (replay: npm run fuzz -- --seed ${seed} --cases ${cases} --only <decoder>)`,
  )
  const pad = (s: string | number, n: number, right = false) => (right ? String(s).padEnd(n) : String(s).padStart(n))
  const header = `${pad("decoder", 24, true)} ${pad("cases", 10)} ${pad("accepted", 9)} ${pad("failures", 8)} ${pad("cases/s", 8)} ${pad("seconds", 7)} ${pad("slowest cpu ms", 14)}  rejected by code`
  console.log(header)
  console.log("-".repeat(header.length + 16))
  const rows: Row[] = []
  const dir = process.env.BENCH_RESULTS_DIR ?? join(import.meta.dirname, "../../bench/results")
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `fuzz-${new Date().toISOString().slice(0, 10)}.json`)
  const save = (done: boolean) => {
    const failures = rows.reduce((s, r) => s + r.failures, 0)
    const doc = { bench: "fuzz", date: new Date().toISOString(), node: process.version, seed, casesPerDecoder: cases, complete: done, failures, rows }
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`)
    return failures
  }
  const report = (r: Row) => {
    rows.push(r)
    const codes = Object.entries(r.rejected)
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ${n}`)
      .join(", ")
    console.log(
      `${pad(r.decoder, 24, true)} ${pad(r.cases, 10)} ${pad(r.accepted, 9)} ${pad(r.failures, 8)} ${pad(r.casesPerSecond, 8)} ${pad(r.seconds, 7)} ${pad(r.slowestMs, 14)}  ${codes}`,
    )
    if (r.failure !== undefined) console.log(`\n${r.failure}\n`)
    save(false) // a long run interrupted still leaves what it measured
  }
  if (jobs <= 1) for (const t of targets) report(runTarget(t, cases, seed))
  else await runJobs(report)
  rows.sort((a, b) => TARGETS.findIndex((t) => t.name === a.decoder) - TARGETS.findIndex((t) => t.name === b.decoder))
  const failures = save(true)
  const missing = targets.length - rows.length
  console.log(`\n${rows.reduce((s, r) => s + r.cases, 0).toLocaleString("en")} cases, ${failures} failing decoder(s)${missing ? `, ${missing} not run (a worker died)` : ""}; wrote ${file}`)
  process.exitCode = failures > 0 || missing > 0 ? 1 : 0
}

/** Splits the targets round-robin over `jobs` child processes (this script with --child). */
async function runJobs(report: (r: Row) => void): Promise<void> {
  const groups = Array.from({ length: Math.min(jobs, targets.length) }, (_, j) => targets.filter((_, i) => i % jobs === j).map((t) => t.name))
  await Promise.all(
    groups.map(
      (names) =>
        new Promise<void>((resolve) => {
          const args = [...process.execArgv, import.meta.filename, "--child", "--cases", String(cases), "--seed", String(seed), "--only", names.join(",")]
          const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] })
          createInterface({ input: child.stdout }).on("line", (line) => report(JSON.parse(line) as Row))
          child.on("close", () => resolve())
        }),
    ),
  )
}
