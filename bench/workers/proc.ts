/**
 * Driver side of the bench workers: spawns a TypeScript worker under tsx with a stdin pipe
 * (the worker exits when the pipe closes, so a dead driver leaves no orphans), collects its
 * stdout lines, and speaks a tiny JSON-lines RPC (`@rpc {...}` replies) with per-call
 * timeouts. Every spawned worker is tracked so `killAllWorkers()` can end them by pid.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { appendFileSync } from "node:fs"
import { join } from "node:path"

export const WORKERS = import.meta.dirname

export { now } from "./measure.ts"

const live = new Set<Worker>()

/** BENCH_WORKER_LOG=<file>: every worker's non-RPC stdout lines (e.g. `--trace-gc`) appended there, labelled. */
const WORKER_LOG = process.env.BENCH_WORKER_LOG || undefined

/**
 * V8 flags every worker runs with, baselines included (`BENCH_V8_FLAGS=""` for V8's defaults).
 * Without incremental marking a streaming process with a small heap is not driven into
 * back-to-back mark-compacts (0–2 per GiB instead of 20–70; docs/PERFORMANCE.md, "Hosting a
 * node"); raw pub/sub measures the same either way. The CLIs run with the same flag.
 */
export const BENCH_V8_FLAGS = (process.env.BENCH_V8_FLAGS ?? "--no-incremental-marking").split(" ").filter(Boolean)

export interface RpcReply {
  id: number
  ok: boolean
  result?: unknown
  error?: string
}

export class Worker {
  readonly proc: ChildProcess
  readonly lines: string[] = []
  readonly exited: Promise<number | null>
  #stderr = ""
  #buf = ""
  #waiters: Array<() => void> = []
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>()

  constructor(
    readonly label: string,
    script: string,
    args: string[] = [],
  ) {
    // BENCH_WORKER_NODE_ARGS: extra node flags for every worker, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
    const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? "").split(" ").filter(Boolean)
    this.proc = spawn(process.execPath, [...BENCH_V8_FLAGS, ...extra, "--import", "tsx", join(WORKERS, script), ...args], { stdio: ["pipe", "pipe", "pipe"] })
    live.add(this)
    this.proc.stdin!.on("error", () => {})
    this.proc.stdout!.on("data", (d: Buffer) => {
      this.#buf += d.toString()
      let i
      while ((i = this.#buf.indexOf("\n")) >= 0) {
        const line = this.#buf.slice(0, i)
        this.#buf = this.#buf.slice(i + 1)
        if (line.startsWith("@rpc ")) this.#onReply(JSON.parse(line.slice(5)) as RpcReply)
        else {
          this.lines.push(line)
          if (WORKER_LOG !== undefined) appendFileSync(WORKER_LOG, `${this.label} ${line}\n`)
        }
        for (const w of this.#waiters.splice(0)) w()
      }
    })
    this.proc.stderr!.on("data", (d: Buffer) => (this.#stderr = (this.#stderr + d).slice(-4000)))
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code, signal) => {
        live.delete(this)
        const why = new Error(`${this.label} exited (${code ?? signal}); stderr: ${this.#stderr}`)
        for (const [id, p] of this.#pending) {
          clearTimeout(p.timer)
          p.reject(why)
          this.#pending.delete(id)
        }
        for (const w of this.#waiters.splice(0)) w()
        resolve(code)
      }),
    )
  }

  get stderr(): string {
    return this.#stderr
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** The first stdout line (not an RPC reply) matching `match`, waiting up to `timeoutMs`. */
  line(match: (l: string) => boolean, timeoutMs = 60_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label}: no matching line within ${timeoutMs} ms; stderr: ${this.#stderr}`)), timeoutMs)
      const check = () => {
        const l = this.lines.find(match)
        if (l !== undefined) {
          clearTimeout(timer)
          resolve(l)
        } else if (!this.alive) {
          clearTimeout(timer)
          reject(new Error(`${this.label} exited (${this.proc.exitCode ?? this.proc.signalCode}) before a matching line; stderr: ${this.#stderr}`))
        } else this.#waiters.push(check)
      }
      check()
    })
  }

  /** The first stdout line that parses as a JSON object. */
  async json<T>(timeoutMs = 60_000): Promise<T> {
    return JSON.parse(await this.line((l) => l.startsWith("{"), timeoutMs)) as T
  }

  /** Calls `cmd` in the worker; rejects on the worker's error, its death, or the timeout. */
  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`${this.label} is not running; stderr: ${this.#stderr}`))
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.label}: ${cmd} timed out after ${timeoutMs} ms; stderr: ${this.#stderr}`))
      }, timeoutMs)
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.proc.stdin!.write(`${JSON.stringify({ id, cmd, args })}\n`)
    })
  }

  #onReply(reply: RpcReply): void {
    const p = this.#pending.get(reply.id)
    if (p === undefined) return
    this.#pending.delete(reply.id)
    clearTimeout(p.timer)
    if (reply.ok) p.resolve(reply.result)
    else p.reject(new Error(`${this.label}: ${reply.error ?? "failed"}`))
  }

  /** Closes stdin (the worker cleans up and exits), then SIGKILLs after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.alive) return
    this.proc.stdin!.end()
    const timer = setTimeout(() => this.kill(), graceMs)
    await this.exited
    clearTimeout(timer)
  }

  kill(): void {
    if (this.alive) this.proc.kill("SIGKILL")
  }
}

/** SIGKILLs every worker still running (by its own pid). */
export function killAllWorkers(): void {
  for (const w of live) w.kill()
}

/** Waits until every worker that is still tracked has exited (after `killAllWorkers`). */
export async function allWorkersExited(): Promise<void> {
  await Promise.all([...live].map((w) => w.exited))
}

process.once("exit", killAllWorkers)
