/** Progress of a long operation: bytes (and items, for trees) done and, when known, the totals. */
export interface Progress {
  readonly bytes: number
  readonly totalBytes?: number
  readonly items?: number
  readonly totalItems?: number
}

export type OnProgress = (progress: Progress) => void

/** Calls `onProgress` at most every `everyMs` (and always for the final report). */
export function throttled(onProgress: OnProgress | undefined, everyMs = 100): (p: Progress, final?: boolean) => void {
  if (onProgress === undefined) return () => {}
  let last = 0
  return (p, final = false) => {
    const now = Date.now()
    if (final || now - last >= everyMs) {
      last = now
      onProgress(p)
    }
  }
}
