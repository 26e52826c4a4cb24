import { BlobRef, type Blobs, fetchBlob, fetchDir, type ReadSources, storeDir, walkDir } from "../plugin/index.ts"
import { UsageError } from "./exit-codes.ts"
import { addSources, formatSources, noSources, sourcesTotal } from "./mesh-sources.ts"
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
  // storeDir writes directory manifests without advertising them: advertise them here so
  // peers can resolve the root (and every subdirectory) from this node
  s.blobs.mesh?.advertise(ref)
  for await (const e of walkDir(s.blobs, ref, { signal: ctx.signal })) if (e.entry.kind === "dir") s.blobs.mesh?.advertise(e.entry.ref)
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
 * `transfer recv-dir <ref> --out <dir>`: makes every file of the tree local (fetched from
 * the nearest holders, progress in bytes and files), then materializes the tree atomically.
 */
export async function recvDir(s: Session, refText: string, out: string, ctx: TransferContext): Promise<void> {
  const ref = BlobRef.parse(refText)
  if (ref.kind !== "dir") throw new UsageError("not a directory ref: use transfer recv-blob <ref> --out <file>")
  const started = Date.now()
  const { sources, bytes } = await fetchTreeFiles(s.blobs, ref, bar("recv", ctx), ctx.signal)
  await fetchDir(s.blobs, ref, out, { signal: ctx.signal })
  report(ctx, { ref, out, bytes, ms: Date.now() - started, sources, node: s.node })
}

/** Fetches each distinct file blob of a tree (bounded concurrency) and sums where bytes came from. */
async function fetchTreeFiles(blobs: Blobs, root: BlobRef, progress: ProgressBar, outer: AbortSignal): Promise<{ sources: ReadSources; bytes: number }> {
  // one failed file stops the others
  const ctrl = new AbortController()
  const signal = AbortSignal.any([outer, ctrl.signal])
  const files = new Map<string, { ref: BlobRef; entries: number }>()
  let totalItems = 0
  for await (const e of walkDir(blobs, root, { signal })) {
    if (e.entry.kind !== "file") continue
    totalItems++
    const f = files.get(e.entry.ref.hex)
    if (f) f.entries++
    else files.set(e.entry.ref.hex, { ref: e.entry.ref, entries: 1 })
  }
  const list = [...files.values()]
  const totalBytes = list.reduce((n, f) => n + f.ref.size, 0)
  const sources = noSources()
  let doneBytes = 0
  let items = 0
  const inFlight = new Map<string, number>()
  const update = () => {
    let bytes = doneBytes
    for (const n of inFlight.values()) bytes += n
    progress.update({ bytes, totalBytes, items, totalItems })
  }
  let next = 0
  const worker = async () => {
    while (next < list.length) {
      const f = list[next++]!
      const hex = f.ref.hex
      const got = await fetchBlob(blobs, f.ref, {
        signal,
        onProgress: (p) => {
          inFlight.set(hex, p.bytes)
          update()
        },
      })
      inFlight.delete(hex)
      addSources(sources, got.sources)
      doneBytes += f.ref.size
      items += f.entries
      update()
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(16, list.length) }, () =>
      worker().catch((err) => {
        ctrl.abort(err)
        throw err
      }),
    ),
  )
  progress.finish({ bytes: totalBytes, totalBytes, items: totalItems, totalItems })
  // blobs that were already held here were served by this node's own store
  const missing = totalBytes - sourcesTotal(sources)
  if (missing > 0) sources.disk += missing
  return { sources, bytes: totalBytes }
}

function report(ctx: TransferContext, r: { ref: BlobRef; out: string; bytes: number; ms: number; sources: ReadSources; node: string }): void {
  const secs = Math.max(r.ms / 1000, 0.001)
  ctx.print(
    `${r.out}: ${formatBytes(r.bytes)} in ${secs.toFixed(2)}s (${formatBytes(r.bytes / secs)}/s) as ${r.node}, from:\n${formatSources(r.sources)}`,
    { ref: r.ref.toString(), out: r.out, bytes: r.bytes, ms: r.ms, node: r.node, sources: r.sources },
  )
}
