import { randomBytes } from "node:crypto"
import { open, rename, rm } from "node:fs/promises"
import { BlobRef } from "../storage/format/blob-ref.ts"
import { AbortedError, ClosedError, NotFoundError, throwIfAborted } from "../storage/format/errors.ts"
import type { Durability } from "../storage/file-chunk-store.ts"
import type { HashBackendName } from "../storage/format/hasher.ts"
import { type BlobStat, LocalStore } from "../storage/local-store.ts"
import { fileSource, normaliseInput, type PutInput } from "./inputs.ts"
import { type OnProgress, throttled } from "./progress.ts"

export interface AbortOptions {
  signal?: AbortSignal
}

export interface BlobsOpenOptions {
  /** Store folder: durable. */
  dir?: string
  /** In-memory store: nothing on disk, and nothing is ever deleted on its own. */
  memory?: boolean
  /** Memory cache bytes (default 1/16 of free memory, 16–512 MiB). */
  cacheBytes?: number
  /** `flush` (default): fsync at `flush()`; `always`: fsync every chunk before it becomes visible. */
  durability?: Durability
  /** BLAKE3 backend; default native with a wasm fallback. */
  hash?: HashBackendName
}

export interface PutOptions extends AbortOptions {
  tags?: Record<string, string>
  onProgress?: OnProgress
}

export interface ReadOptions extends AbortOptions {
  onProgress?: OnProgress
}

/** Where a read's bytes came from (cache, local disk, or which peers). */
export interface ReadSources {
  cache: number
  disk: number
  peers: Record<string, number>
}

/**
 * Reads a blob that is not held locally (the mesh). Returns undefined when there is no
 * mesh; `Blobs` stays a local store then.
 */
export interface RemoteReader {
  read(ref: BlobRef, options: ReadOptions): AsyncIterable<Uint8Array>
}

/**
 * A node's blobs: put bytes in, get a `BlobRef`; resolve a ref to verified bytes.
 *
 * @example
 * await using blobs = await Blobs.open({ dir: "./data" })
 * const ref = await blobs.put(bytes, { tags: { version: "v3" } })
 * const same = await blobs.get(ref)
 */
export class Blobs implements AsyncDisposable {
  #remote: RemoteReader | undefined
  readonly #onClose: Array<() => Promise<void>> = []
  #closing: Promise<void> | undefined

  protected constructor(readonly store: LocalStore) {}

  /** Opens a durable store (`{ dir }`) or an in-memory one (`{ memory: true }`). */
  static async open(options: BlobsOpenOptions): Promise<Blobs> {
    return new Blobs(await LocalStore.open(options))
  }

  /** Plugs in the mesh read path and something to stop at close (used by the NATS attach). */
  attachRemote(remote: RemoteReader, stop: () => Promise<void>): void {
    this.#remote = remote
    this.#onClose.push(stop)
  }

  /** Puts bytes (a Uint8Array, an AsyncIterable, a Node Readable or a web ReadableStream). */
  async put(input: PutInput, options: PutOptions = {}): Promise<BlobRef> {
    this.#enter(options.signal)
    const { source, stable } = normaliseInput(input)
    const total = input instanceof Uint8Array ? input.length : undefined
    const report = throttled(options.onProgress)
    const ref = await this.store.put(source, {
      tags: options.tags,
      signal: options.signal,
      stable,
      onBytes: (bytes) => report({ bytes, ...(total === undefined ? {} : { totalBytes: total }) }),
    })
    report({ bytes: ref.size, totalBytes: ref.size }, true)
    return ref
  }

  /** Puts a file's bytes, streamed with about one chunk of memory. */
  async putFile(path: string, options: PutOptions = {}): Promise<BlobRef> {
    this.#enter(options.signal)
    const { stat } = await import("node:fs/promises")
    const totalBytes = (await stat(path)).size
    const report = throttled(options.onProgress)
    const ref = await this.store.put(fileSource(path), {
      tags: options.tags,
      signal: options.signal,
      onBytes: (bytes) => report({ bytes, totalBytes }),
    })
    report({ bytes: ref.size, totalBytes: ref.size }, true)
    return ref
  }

  /**
   * Streams a blob's verified bytes: local cache and disk first, then the mesh when
   * attached. Breaking out of the loop stops the read and frees what it held.
   */
  async *read(ref: BlobRef | string, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    this.#enter(options.signal)
    const r = BlobRef.from(ref)
    const report = throttled(options.onProgress)
    let bytes = 0
    const source = (await this.store.hasBlob(r)) ? this.store.read(r, options) : this.#remoteRead(r, options)
    for await (const part of source) {
      throwIfAborted(options.signal)
      bytes += part.length
      report({ bytes, totalBytes: r.size })
      yield part
    }
    report({ bytes, totalBytes: r.size }, true)
  }

  #remoteRead(ref: BlobRef, options: ReadOptions): AsyncIterable<Uint8Array> {
    if (this.#remote === undefined) throw new NotFoundError(ref.toString())
    return this.#remote.read(ref, options)
  }

  /** The whole blob in memory. Prefer `read` or `getToFile` for big blobs. */
  async get(ref: BlobRef | string, options: ReadOptions = {}): Promise<Uint8Array> {
    const r = BlobRef.from(ref)
    const out = new Uint8Array(r.size)
    let off = 0
    for await (const part of this.read(r, options)) {
      out.set(part, off)
      off += part.length
    }
    return out
  }

  /**
   * Writes a blob to `path` atomically: bytes go to `<path>.partial`, which is renamed over
   * `path` only after every byte arrived verified. On failure the partial file is removed.
   */
  async getToFile(ref: BlobRef | string, path: string, options: ReadOptions = {}): Promise<BlobStatLike> {
    const r = BlobRef.from(ref)
    this.#enter(options.signal)
    const partial = `${path}.${randomBytes(4).toString("hex")}.partial`
    const fh = await open(partial, "w")
    try {
      for await (const part of this.read(r, options)) {
        let off = 0
        while (off < part.length) off += (await fh.write(part, off, part.length - off)).bytesWritten
      }
      await fh.close()
      await rename(partial, path)
      return { ref: r, size: r.size, path }
    } catch (err) {
      await fh.close().catch(() => {})
      await rm(partial, { force: true })
      throw err
    }
  }

  /** What this node knows about a blob it holds; NotFoundError when it does not hold it. */
  async stat(ref: BlobRef | string, options: AbortOptions = {}): Promise<BlobStat> {
    this.#enter(options.signal)
    return this.store.stat(BlobRef.from(ref))
  }

  /** Blobs held here, optionally only those tagged `key=value`. */
  list(options: { tag?: string } = {}): AsyncIterable<BlobStat> {
    this.#enter(undefined)
    return this.store.list(options)
  }

  /** Operator action: forgets a blob here (chunks shared with other blobs stay). */
  async delete(ref: BlobRef | string, options: AbortOptions = {}): Promise<boolean> {
    this.#enter(options.signal)
    return this.store.delete(BlobRef.from(ref))
  }

  /** Hard durability barrier: every put resolved before this call survives a power cut. */
  async flush(options: AbortOptions = {}): Promise<void> {
    this.#enter(options.signal)
    await this.store.flush()
  }

  /** Idempotent; stops what the node started (never the caller's NATS connection). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const stop of this.#onClose.splice(0).reverse()) await stop().catch(() => {})
      await this.store.close()
    })()
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  #enter(signal: AbortSignal | undefined): void {
    if (this.#closing || this.store.closed) throw new ClosedError()
    if (signal?.aborted) throw new AbortedError({ cause: signal.reason })
  }
}

export interface BlobStatLike {
  ref: BlobRef
  size: number
  path: string
}
