import { BlobRef } from "../storage/format/blob-ref.ts"
import { AbortedError, NotFoundError } from "../storage/format/errors.ts"
import type { Blobs } from "./blobs.ts"
import { emptySources, type ReadSources } from "./mesh.ts"
import { type OnProgress, throttled } from "./progress.ts"

export interface FetchBlobOptions {
  signal?: AbortSignal
  onProgress?: OnProgress
}

/**
 * Makes a blob local to `blobs`' node: fetched from the nearest holders, verified, stored,
 * and advertised (this node becomes a holder). A no-op when it is already held. Returns
 * where the bytes came from.
 *
 * @throws {NoHolderError} no live node holds it (after a bounded wait)
 */
export async function fetchBlob(blobs: Blobs, ref: BlobRef | string, options: FetchBlobOptions = {}): Promise<{ ref: BlobRef; sources: ReadSources }> {
  const r = BlobRef.from(ref)
  if (options.signal?.aborted) throw new AbortedError({ cause: options.signal.reason })
  if (await blobs.store.hasBlob(r)) return { ref: r, sources: emptySources() }
  if (blobs.mesh === undefined) throw new NotFoundError(r.toString())
  const report = throttled(options.onProgress)
  let bytes = 0
  const sources = await blobs.mesh.fetchBlob(r, {
    ...(options.signal ? { signal: options.signal } : {}),
    onBytes: (n) => report({ bytes: (bytes += n), totalBytes: r.size }),
  })
  report({ bytes: r.size, totalBytes: r.size }, true)
  return { ref: r, sources }
}
