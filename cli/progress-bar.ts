import type { Progress } from "../plugin/index.ts"

/**
 * Progress on stderr: a determinate bar (bytes, %, rate, ETA; files when counted) redrawn in
 * place on a TTY, or a plain line every few seconds otherwise (logs, CI). Nothing on stdout,
 * so `net-blob get ref > file` stays clean.
 */
export class ProgressBar {
  readonly #tty: boolean
  readonly #started = Date.now()
  #lastLine = 0
  #lastDraw = 0
  #done = false
  #last: Progress = { bytes: 0 }

  constructor(readonly label: string, private readonly stream: NodeJS.WriteStream = process.stderr, options: { quiet?: boolean } = {}) {
    this.#tty = Boolean(stream.isTTY) && !options.quiet
    if (options.quiet) this.#done = true
  }

  update = (p: Progress): void => {
    this.#last = p
    if (this.#done) return
    const now = Date.now()
    if (this.#tty) {
      if (now - this.#lastDraw < 80 && p.bytes !== p.totalBytes) return
      this.#lastDraw = now
      this.stream.write(`\r\x1b[K${this.render(p, now)}`)
    } else if (now - this.#lastLine >= 2000) {
      this.#lastLine = now
      this.stream.write(`${this.render(p, now)}\n`)
    }
  }

  /** Prints the final line: `p`, or the last progress seen. */
  finish(p: Progress = this.#last): void {
    if (this.#done) return
    this.#done = true
    const line = this.render(p, Date.now())
    this.stream.write(this.#tty ? `\r\x1b[K${line}\n` : `${line}\n`)
  }

  render(p: Progress, now: number): string {
    const secs = Math.max((now - this.#started) / 1000, 0.001)
    const rate = p.bytes / secs
    const parts = [this.label]
    if (p.totalBytes !== undefined && p.totalBytes > 0) {
      const frac = Math.min(1, p.bytes / p.totalBytes)
      const width = 24
      const filled = Math.round(frac * width)
      parts.push(`[${"#".repeat(filled)}${"-".repeat(width - filled)}]`, `${(frac * 100).toFixed(1).padStart(5)}%`)
      parts.push(`${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}`)
      // too early for a rate: the first pieces arrive before any steady state
      const eta = rate > 0 && secs >= 0.5 ? (p.totalBytes - p.bytes) / rate : Infinity
      parts.push(`${formatBytes(rate)}/s`, `ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)}s` : "?"}`)
    } else {
      parts.push(formatBytes(p.bytes), `${formatBytes(rate)}/s`)
    }
    if (p.items !== undefined) parts.push(`${p.items}${p.totalItems !== undefined ? `/${p.totalItems}` : ""} files`)
    return parts.join(" ")
  }
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}
