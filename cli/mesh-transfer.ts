import { BlobRef, fetchDir, type ReadSources, storeDir } from "../plugin/index.ts"
import { UsageError } from "./exit-codes.ts"
import { formatSources, noSources } from "./mesh-sources.ts"
import type { Session } from "./mesh-session.ts"
import { formatBytes, ProgressBar } from "./progress-bar.ts"

/** What every transfer command gets from the entry point. */
export interface TransferContext {
  readonly json: boolean
  readonly quiet: boolean
  readonly signal: AbortSignal
  /** One result on stdout: `text`, or `obj` as a JSON line with --json. */
  print(text: string, obj: unknown): void
}

const bar = (label: string, ctx: TransferContext) => new ProgressBar(label, process.stderr, { quiet: ctx.quiet || ctx.json })

/** `transfer send-blob <file>`: puts the file, prints its ref, serves until the signal. */
export async function sendBlob(s: Session, file: string, ctx: TransferContext): Promise<void> {
  const progress = bar("put", ctx)
  const ref = await s.blobs.putFile(file, { signal: ctx.signal, onProgress: progress.update })
  progress.finish({ bytes: ref.size, totalBytes: ref.size })
  announce(s, ref, ctx)
  await serve(s, ctx)
}

/** `transfer send-dir <dir>`: stores the tree, prints its root ref, serves until the signal. */
export async function sendDir(s: Session, dir: string, ctx: TransferContext): Promise<void> {
  const progress = bar("put", ctx)
  const ref = await storeDir(s.blobs, dir, { signal: ctx.signal, onProgress: progress.update })
  progress.finish()
  announce(s, ref, ctx)
  await serve(s, ctx)
}

function announce(s: Session, ref: BlobRef, ctx: TransferContext): void {
  s.blobs.mesh?.folds.flush()
  ctx.print(ref.toString(), { ref: ref.toString(), kind: ref.kind, size: ref.size, node: s.node })
  if (!ctx.json) process.stderr.write(`serving as ${s.node}; Ctrl-C to stop\n`)
}

/** Resolves when the run is asked to stop (SIGINT/SIGTERM); the caller then closes cleanly. */
function serve(_s: Session, ctx: TransferContext): Promise<void> {
  if (ctx.signal.aborted) return Promise.resolve()
  return new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }))
}

/** `transfer recv-blob <ref> --out <file>`: fetches with a byte progress bar, then prints the sources. */
export async function recvBlob(s: Session, refText: string, out: string, ctx: TransferContext): Promise<void> {
  const ref = BlobRef.parse(refText)
  if (ref.kind === "dir") throw new UsageError("a directory ref: use transfer recv-dir <ref> --out <dir>")
  const sources = noSources()
  const progress = bar("recv", ctx)
  const started = Date.now()
  await s.blobs.getToFile(ref, out, { signal: ctx.signal, sources, onProgress: progress.update })
  progress.finish({ bytes: ref.size, totalBytes: ref.size })
  report(ctx, { ref, out, bytes: ref.size, ms: Date.now() - started, sources, node: s.node })
}

/**
 * `transfer recv-dir <ref> --out <dir>`: fetches the tree from the nearest holders (small
 * files in batches; progress in bytes and files) and materializes it atomically.
 */
export async function recvDir(s: Session, refText: string, out: string, ctx: TransferContext): Promise<void> {
  const ref = BlobRef.parse(refText)
  if (ref.kind !== "dir") throw new UsageError("not a directory ref: use transfer recv-blob <ref> --out <file>")
  const started = Date.now()
  const sources = noSources()
  const progress = bar("recv", ctx)
  let bytes = 0
  await fetchDir(s.blobs, ref, out, {
    signal: ctx.signal,
    sources,
    onProgress: (p) => {
      bytes = p.totalBytes ?? p.bytes
      progress.update(p)
    },
  })
  progress.finish()
  report(ctx, { ref, out, bytes, ms: Date.now() - started, sources, node: s.node })
}

function report(ctx: TransferContext, r: { ref: BlobRef; out: string; bytes: number; ms: number; sources: ReadSources; node: string }): void {
  const secs = Math.max(r.ms / 1000, 0.001)
  ctx.print(
    `${r.out}: ${formatBytes(r.bytes)} in ${secs.toFixed(2)}s (${formatBytes(r.bytes / secs)}/s) as ${r.node}, from:\n${formatSources(r.sources)}`,
    { ref: r.ref.toString(), out: r.out, bytes: r.bytes, ms: r.ms, node: r.node, sources: r.sources },
  )
}
