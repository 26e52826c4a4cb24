import { execFile } from "node:child_process"
import { join } from "node:path"
import type { FallbackReport } from "./child-fallback.ts"

export type { FallbackReport }

const ROOT = join(import.meta.dirname, "../..")

/**
 * Runs test/support/child-fallback.ts as `node <nodeArgs> --import tsx child-fallback.ts
 * <natsUrl> <dir> <bytes> <seed>` with `env` added, and returns its report and wall time.
 */
export function runFallbackChild(opts: { nodeArgs?: string[]; env?: Record<string, string>; natsUrl: string; dir: string; bytes: number; seed: number; timeoutMs?: number }): Promise<{ report: FallbackReport; ms: number; stderr: string }> {
  const args = [...(opts.nodeArgs ?? []), "--import", "tsx", join(import.meta.dirname, "child-fallback.ts"), opts.natsUrl, opts.dir, String(opts.bytes), String(opts.seed)]
  const t = performance.now()
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 240_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`child-fallback failed: ${err.message}\nstderr: ${stderr.slice(-4000)}`))
      const line = stdout.split("\n").find((l) => l.startsWith("{"))
      if (line === undefined) return reject(new Error(`child-fallback printed no report; stdout: ${stdout.slice(-2000)} stderr: ${stderr.slice(-4000)}`))
      resolve({ report: JSON.parse(line) as FallbackReport, ms: Math.round(performance.now() - t), stderr })
    })
  })
}
