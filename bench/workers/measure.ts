/** What every bench worker measures about itself, and how it dies with its driver. */
import { tuneMalloc } from "../../plugin/allocator.ts"

/** Wall-clock milliseconds comparable across processes on one host. */
export const now = (): number => performance.timeOrigin + performance.now()

/** Peak resident memory so far, MiB. */
export const maxRssMiB = (): number => Math.round(process.resourceUsage().maxRSS / 1024)

/** CPU seconds (user + system) this process has used. */
export const cpuS = (): number => {
  const u = process.resourceUsage()
  return (u.userCPUTime + u.systemCPUTime) / 1e6
}

/**
 * `BENCH_MALLOC=default` leaves glibc's malloc as it is in every worker (A/B runs); otherwise
 * the baselines get the same setting `Blobs.open` makes (plugin/allocator.ts), so every
 * path of a run is measured alike.
 */
export const benchTunesMalloc = process.env.BENCH_MALLOC !== "default"

/** Gives a baseline worker the malloc setting our nodes get (see `benchTunesMalloc`). */
export function tuneBaselineMalloc(): void {
  if (benchTunesMalloc) tuneMalloc()
}

/** A dead driver closes our stdin: leave, so no worker outlives its bench. */
export function exitWithDriver(): void {
  process.stdin.on("end", () => process.exit(1))
  process.stdin.resume()
}
