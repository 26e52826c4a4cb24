/**
 * The soak engine's side of one node process (test/support/soak-node.ts): spawns it under tsx
 * with a stdin pipe (it exits when the pipe closes, so a dead driver leaves no orphan) and
 * speaks its JSON-lines RPC with a timeout per call. A failed call rejects with a SoakCallError
 * carrying the node's typed error code, or none when the error was not one of ours.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"

/** Why a call to a node failed: `code` is a Dataforts error code, or undefined (untyped, a bug), or one of the engine's own. */
export class SoakCallError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    /** The engine's own reasons: the node process died under the call, or the call timed out. */
    readonly reason?: "NODE_GONE" | "CALL_TIMEOUT",
  ) {
    super(message)
  }
}

export class SoakProc {
  readonly proc: ChildProcess
  readonly exited: Promise<void>
  #stderr = ""
  #buf = ""
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>()

  constructor(readonly label: string) {
    // the same V8 flag the CLIs and bench workers run with (docs/PERFORMANCE.md, "Hosting a node")
    this.proc = spawn(process.execPath, ["--no-incremental-marking", "--import", "tsx", join(import.meta.dirname, "soak-node.ts")], { stdio: ["pipe", "pipe", "pipe"] })
    this.proc.stdin!.on("error", () => {})
    this.proc.stdout!.on("data", (d: Buffer) => {
      this.#buf += d.toString()
      let i
      while ((i = this.#buf.indexOf("\n")) >= 0) {
        const line = this.#buf.slice(0, i)
        this.#buf = this.#buf.slice(i + 1)
        if (line.startsWith("@rpc ")) this.#onReply(JSON.parse(line.slice(5)) as { id: number; ok: boolean; result?: unknown; error?: { code?: string; message: string } })
      }
    })
    this.proc.stderr!.on("data", (d: Buffer) => (this.#stderr = (this.#stderr + d).slice(-4000)))
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code, signal) => {
        for (const [id, p] of this.#pending) {
          clearTimeout(p.timer)
          p.reject(new SoakCallError(`${this.label} exited (${code ?? signal}); stderr: ${this.#stderr}`, undefined, "NODE_GONE"))
          this.#pending.delete(id)
        }
        resolve()
      }),
    )
  }

  get pid(): number {
    return this.proc.pid!
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  get stderr(): string {
    return this.#stderr
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    if (!this.alive) return Promise.reject(new SoakCallError(`${this.label} is not running`, undefined, "NODE_GONE"))
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new SoakCallError(`${this.label}: ${cmd} timed out after ${timeoutMs} ms`, undefined, "CALL_TIMEOUT"))
      }, timeoutMs)
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.proc.stdin!.write(`${JSON.stringify({ id, cmd, args })}\n`)
    })
  }

  #onReply(reply: { id: number; ok: boolean; result?: unknown; error?: { code?: string; message: string } }): void {
    const p = this.#pending.get(reply.id)
    if (p === undefined) return
    this.#pending.delete(reply.id)
    clearTimeout(p.timer)
    if (reply.ok) p.resolve(reply.result)
    else p.reject(new SoakCallError(`${this.label}: ${reply.error?.message ?? "failed"}`, reply.error?.code))
  }

  /** A holder dying: SIGKILL, no goodbye. */
  async kill(): Promise<void> {
    if (this.alive) this.proc.kill("SIGKILL")
    await this.exited
  }

  /** Closes stdin (the node closes and exits), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.alive) return
    this.proc.stdin!.end()
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs)
    await this.exited
    clearTimeout(timer)
  }
}
