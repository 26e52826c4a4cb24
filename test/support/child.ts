import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"

export const SUPPORT = import.meta.dirname

/** Spawns a TypeScript worker under tsx, collecting stdout lines. */
export function spawnTs(script: string, args: string[], env: Record<string, string> = {}): { proc: ChildProcess; lines: string[]; line(match: (l: string) => boolean, timeoutMs?: number): Promise<string>; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, ["--import", "tsx", join(SUPPORT, script), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  })
  const lines: string[] = []
  const waiters: Array<() => void> = []
  let buf = ""
  let stderr = ""
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString()
    let i
    while ((i = buf.indexOf("\n")) >= 0) {
      lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
      for (const w of waiters.splice(0)) w()
    }
  })
  proc.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d).slice(-4000)))
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => {
    for (const w of waiters.splice(0)) w()
    resolve(code)
  }))
  return {
    proc,
    lines,
    exited,
    line(match, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching line within ${timeoutMs}ms; stderr: ${stderr}`)), timeoutMs)
        const check = () => {
          const l = lines.find(match)
          if (l !== undefined) {
            clearTimeout(timer)
            resolve(l)
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            clearTimeout(timer)
            reject(new Error(`worker exited (${proc.exitCode ?? proc.signalCode}) before a matching line; stderr: ${stderr}`))
          } else waiters.push(check)
        }
        check()
      })
    },
  }
}
