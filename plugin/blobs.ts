import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { open, readFile, rename, rm, stat } from "node:fs/promises"
import { BlobRef } from "../storage/format/blob-ref.ts"
import { AbortedError, ClosedError, NotFoundError, throwIfAborted } from "../storage/format/errors.ts"
import type { Durability } from "../storage/file-chunk-store.ts"
import type { HashBackendName } from "../storage/format/hasher.ts"
import { type BlobStat, LocalStore } from "../storage/local-store.ts"
import { fileSource, normaliseInput, type PutInput } from "./inputs.ts"
import { holdFreedMemoryWhileBusy } from "./allocator.ts"
import { type AttachOptions, emptySources, Mesh, type ReadSources } from "./mesh.ts"
import { type OnProgress, throttled } from "./progress.ts"
import type { NatsConnection } from "@nats-io/nats-core"

export interface AbortOptions {
  signal?: AbortSignal
}

export type { ReadSources }

export interface BlobsOpenOptions {
  /** Store folder: durable. */
  dir?: string
  /** In-memory store: nothing on disk, and nothing is ever deleted on its own. */
  memory?: boolean
  /** Memory cache bytes (default 1/16 of free memory, 16–512 MiB). */
  cacheBytes?: number
  /** `flush` (default): fsync at `flush()`; `always`: fsync every chunk before it becomes visible. */
  durability?: Durability
  /** BLAKE3 backend; default native, falling back to wasm, then pure JS (storage/format/hasher.ts). */
  hash?: HashBackendName
  /**
   * Opt-in, process-wide, glibc only (default false): malloc keeps freed memory while bytes
   * move and gives it back after ~30 s without transfers (plugin/allocator.ts). It changes the
   * host process's allocator, so a library must not do it unasked; a process that mostly moves
   * bytes (our CLIs, the bench) turns it on: a streamed read's receiver went from 4.15–4.28 to
   * 2.69–2.83 CPU-s per GiB with it (docs/PERFORMANCE.md).
   */
  tuneMalloc?: boolean
}

/** Internal (plugin/dirs.ts): a put of one part of a tree, which listings can tell from a blob the user put. */
export const PART_OF_TREE: unique symbol = Symbol("dataforts.partOfTree")

export interface PutOptions extends AbortOptions {
  tags?: Record<string, string>
  onProgress?: OnProgress
  [PART_OF_TREE]?: boolean
}

export interface ReadOptions extends AbortOptions {
  onProgress?: OnProgress
  /** Filled in as the read goes: bytes from the memory cache, local disk, and each peer. */
  sources?: ReadSources
}

export interface BlobsAttachOptions extends BlobsOpenOptions, Omit<AttachOptions, "nats" | "node"> {
  /** An open nats.js v3 connection (`@nats-io/transport-node`); Dataforts never closes it. */
  nats?: NatsConnection
  /** This node's id on the bus (required with `nats`). */
  node?: string
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
  #closing: Promise<void> | undefined
  readonly #stopHoldingMemory: () => void

  private constructor(
    readonly store: LocalStore,
    /** The NATS side when attached (`{ nats, node }`), else undefined. */
    readonly mesh: Mesh | undefined,
    tune: boolean,
  ) {
    this.#stopHoldingMemory = tune ? holdFreedMemoryWhileBusy(() => this.#bytesMoved()) : () => {}
  }

  /**
   * Opens a durable store (`{ dir }`) or an in-memory one (`{ memory: true }`); with
   * `{ nats, node }` the node joins the mesh: it advertises what it holds, serves peers,
   * and resolves refs it does not hold from the nearest holders.
   */
  static async open(options: BlobsAttachOptions): Promise<Blobs> {
    const store = await LocalStore.open(options)
    const tune = options.tuneMalloc ?? false
    if (options.nats === undefined) return new Blobs(store, undefined, tune)
    if (!options.node) {
      await store.close()
      throw new TypeError("Blobs.open with nats needs a node id")
    }
    try {
      return new Blobs(store, await Mesh.attach(store, { ...options, nats: options.nats, node: options.node }), tune)
    } catch (err) {
      await store.close()
      throw err
    }
  }

  /** Puts bytes (a Uint8Array, an AsyncIterable, a Node Readable or a web ReadableStream). */
  async put(input: PutInput, options: PutOptions = {}): Promise<BlobRef> {
    this.#enter(options.signal)
    const { source, stable } = normaliseInput(input)
    const total = input instanceof Uint8Array ? input.length : undefined
    const report = throttled(options.onProgress)
    const ref = await this.store.put(source, {
      tags: options.tags,
      child: options[PART_OF_TREE] === true,
      signal: options.signal,
      stable,
      onBytes: (bytes) => report({ bytes, ...(total === undefined ? {} : { totalBytes: total }) }),
    })
    report({ bytes: ref.size, totalBytes: ref.size }, true)
    this.mesh?.advertise(ref)
    return ref
  }

  /** Puts a file's bytes, streamed with about one chunk of memory. */
  async putFile(path: string, options: PutOptions = {}): Promise<BlobRef> {
    this.#enter(options.signal)
    const totalBytes = (await stat(path)).size
    const report = throttled(options.onProgress)
    // small files in one read (a tree of tiny files is bound by per-file costs)
    const small = totalBytes <= SMALL_FILE_BYTES
    // tiny files are read synchronously (one syscall each, no threadpool round trips)
    const whole = small ? (totalBytes <= 64 * 1024 ? readFileSync(path) : await readFile(path)) : undefined
    const ref = await this.store.put(whole ? onceAsync(whole) : fileSource(path), {
      tags: options.tags,
      child: options[PART_OF_TREE] === true,
      signal: options.signal,
      stable: small,
      sizeHint: totalBytes,
      onBytes: (bytes) => report({ bytes, totalBytes }),
    })
    report({ bytes: ref.size, totalBytes: ref.size }, true)
    this.mesh?.advertise(ref)
    return ref
  }

  /**
   * Streams a blob's verified bytes: local cache and disk first, then the mesh when
   * attached. Each part is the caller's to keep. Breaking out of the loop stops the read
   * and frees what it held.
   */
  read(ref: BlobRef | string, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    return this.#read(ref, options, false)
  }

  /** `borrowed`: each part is valid only until the next is asked for (see mesh.read). */
  async *#read(ref: BlobRef | string, options: ReadOptions, borrowed: boolean): AsyncGenerator<Uint8Array> {
    this.#enter(options.signal)
    const r = BlobRef.from(ref)
    const report = throttled(options.onProgress)
    let bytes = 0
    const sources = options.sources ?? emptySources()
    const meta = await this.store.meta(r)
    const source = meta ? this.store.read(r, { signal: options.signal, sources, meta }) : this.#remoteRead(r, options.signal, sources, borrowed)
    this.mesh?.recordRead(r)
    for await (const part of source) {
      throwIfAborted(options.signal)
      bytes += part.length
      report({ bytes, totalBytes: r.size })
      yield part
    }
    report({ bytes, totalBytes: r.size }, true)
  }

  #remoteRead(ref: BlobRef, signal: AbortSignal | undefined, sources: ReadSources, borrowed: boolean): AsyncIterable<Uint8Array> {
    if (this.mesh === undefined) throw new NotFoundError(ref.toString())
    return this.mesh.read(ref, { ...(signal ? { signal } : {}), sources, borrowed })
  }

  /** The whole blob in memory. Prefer `read` or `getToFile` for big blobs. */
  async get(ref: BlobRef | string, options: ReadOptions = {}): Promise<Uint8Array> {
    const r = BlobRef.from(ref)
    const out = new Uint8Array(r.size)
    let off = 0
    for await (const part of this.#read(r, options, true)) {
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
      for await (const part of this.#read(r, options, true)) {
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
    const r = BlobRef.from(ref)
    const removed = await this.store.delete(r)
    if (removed) this.mesh?.withdraw(r)
    return removed
  }

  /** Hard durability barrier: every put resolved before this call survives a power cut. */
  async flush(options: AbortOptions = {}): Promise<void> {
    this.#enter(options.signal)
    await this.store.flush()
  }

  /**
   * Idempotent; stops what the node started (never the caller's NATS connection). Any order
   * with closing the connection works: a node whose connection closed first has stopped its
   * mesh side already, and this resolves promptly (nothing waits on the dead connection).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.mesh?.close().catch(() => {})
        await this.store.close()
      } finally {
        this.#stopHoldingMemory()
      }
    })()
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  /** Bytes this node has stored, read, received or served so far (quiet when it stops moving). */
  #bytesMoved(): number {
    const c = this.store.counters
    const mesh = this.mesh
    return c.bytesStoredNew + c.bytesReadCache + c.bytesReadDisk + (mesh ? mesh.receiver.bytesReceived + mesh.sender.stats().bytesServed : 0)
  }

  #enter(signal: AbortSignal | undefined): void {
    if (this.#closing || this.store.closed) throw new ClosedError()
    if (signal?.aborted) throw new AbortedError({ cause: signal.reason })
  }
}

/** Files up to this size are read whole by putFile (one syscall, no stream). */
const SMALL_FILE_BYTES = 1 << 20

async function* onceAsync(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

export interface BlobStatLike {
  ref: BlobRef
  size: number
  path: string
}
