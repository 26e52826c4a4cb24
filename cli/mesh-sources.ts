import type { ReadSources } from "../plugin/index.ts"
import { formatBytes } from "./progress-bar.ts"

/** A fresh, empty sources record. */
export const noSources = (): ReadSources => ({ cache: 0, disk: 0, peers: {} })

/** Bytes from every source together. */
export const sourcesTotal = (s: ReadSources): number => s.cache + s.disk + Object.values(s.peers).reduce((a, b) => a + b, 0)

/**
 * Where the bytes came from, one line per source, biggest peer first:
 *   peer producer    12.0 MiB  60.0%
 *   cache             0 B       0.0%
 */
export function formatSources(s: ReadSources, indent = "  "): string {
  const total = sourcesTotal(s)
  const rows: Array<[string, number]> = [
    ...Object.entries(s.peers)
      .sort((a, b) => b[1] - a[1])
      .map(([peer, n]): [string, number] => [`peer ${peer}`, n]),
    ["local cache", s.cache],
    ["local disk", s.disk],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows
    .map(([k, n]) => `${indent}${k.padEnd(width)}  ${formatBytes(n).padStart(10)}  ${(total > 0 ? (100 * n) / total : 0).toFixed(1).padStart(5)}%`)
    .join("\n")
}
