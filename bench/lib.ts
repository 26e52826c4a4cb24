import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** Where results go; BENCH_RESULTS_DIR redirects partial development runs away from the kept ones. */
export const RESULTS = process.env.BENCH_RESULTS_DIR ?? join(import.meta.dirname, "results")

/** MB/s (10^6 bytes per second). */
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000)
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

/**
 * Runs every task once per repetition, round-robin (task A rep 1, task B rep 1, … then rep 2),
 * so background noise hits all alike; returns the median MB/s per task.
 */
export async function roundRobin(tasks: Record<string, { bytes: number; run: () => Promise<unknown> | unknown }>, reps: number): Promise<Record<string, { mbps: number; runs: number[] }>> {
  const runs: Record<string, number[]> = Object.fromEntries(Object.keys(tasks).map((k) => [k, []]))
  for (let r = 0; r < reps; r++) {
    for (const [name, task] of Object.entries(tasks)) {
      const ms = await timed(task.run)
      runs[name]!.push(Number(mbps(task.bytes, ms).toFixed(1)))
    }
  }
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, { mbps: Number(median(v).toFixed(1)), runs: v }]))
}

export function ratio(a: number, b: number): number {
  return Number((a / b).toFixed(2))
}

/** Writes `bench/results/<name>.json` (latest) and prints a table. */
export function report(name: string, result: Record<string, unknown>): void {
  mkdirSync(RESULTS, { recursive: true })
  const doc = { bench: name, date: new Date().toISOString(), node: process.version, ...result }
  writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`)
  console.log(`\n== ${name} ==`)
  console.log(JSON.stringify(result, null, 2))
  console.log(`(written to ${join(RESULTS, `${name}.json`)})`)
}
