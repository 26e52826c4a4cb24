import { mkdir } from "node:fs/promises"
import { join } from "node:path"
import { type BlobCommit, type BlobIndex, type BlobMeta, MemoryBlobIndex } from "./blob-index.ts"
import { type ChunkStore, type ChunkWriteOptions, MemoryChunkStore } from "./chunk-store.ts"
import { type Durability, FileChunkStore } from "./file-chunk-store.ts"
import { BlobRef, type BlobKind } from "./format/blob-ref.ts"
import { CHUNK_MAX_BYTES } from "./format/constants.ts"
import { ClosedError, IntegrityError, NotFoundError, StorageError, throwIfAborted, TooLargeError } from "./format/errors.ts"
import { defaultHashBackend, type HashBackend, type HashBackendName, loadHashBackend } from "./format/hasher.ts"
import { fromHex, toHex } from "./format/hex.ts"
import { decodeManifest, encodeManifest, type Manifest, type ManifestEntry } from "./format/manifest.ts"
import { ChunkCutter } from "./ingest.ts"
import { LevelBlobIndex } from "./level-blob-index.ts"
import { TieredChunkStore } from "./tiered-chunk-store.ts"
import { KeyPins, Mutex } from "./lock.ts"
import { defaultCacheBytes, MemoryCache } from "./memory-cache.ts"

/**
 * Chunks fetched from peers are written around the page cache: they are rarely read back at
 * once, and new page-cache pages cost more CPU than the whole network receive (direct-write.ts).
 */
const FETCHED: ChunkWriteOptions = { bypassPageCache: true }

/** Chunks up to this size live in the LevelDB index instead of their own files. */
export const SMALL_CHUNK_BYTES = 64 * 1024

export interface LocalStoreOptions {
  /** Store folder (durable). Omit and set `memory` for an in-memory store. */
  dir?: string
  memory?: boolean
  /** Memory cache size in bytes (default: 1/16 of free memory, 16–512 MiB). */
  cacheBytes?: number
  durability?: Durability
  /** BLAKE3 backend (default native, falling back to wasm). */
  hash?: HashBackendName
}

export interface PutOptions {
  tags?: Record<string, string>
  signal?: AbortSignal
  /** Input bytes consumed so far. */
  onBytes?: (bytes: number) => void
  /** Internal: the caller's pieces are never reused (a whole Uint8Array). */
  stable?: boolean
  /** Expected size, when known (sizes the chunk buffers). */
  sizeHint?: number
  /** Stored as part of a tree (storeDir's files and subdirectories), not put by the user itself. */
  child?: boolean
}

interface PendingCommit {
  readonly ref: BlobRef
  readonly manifest: Uint8Array | undefined
  readonly chunks: string[]
  readonly tags: Record<string, string> | undefined
  readonly child: boolean
  readonly inline: { hex: string; bytes: Uint8Array } | undefined
  /** Last-read time to record (fetched blobs are being read: no touch right after). */
  readonly lastRead: number
  resolve(): void
  reject(err: unknown): void
}

/** Optional parts of a commit. */
interface CommitExtra {
  tags?: Record<string, string> | undefined
  child?: boolean | undefined
  inline?: { hex: string; bytes: Uint8Array } | undefined
  lastRead?: number
}

/** Bytes a read took from the memory cache and from disk (filled in as it goes). */
export interface LocalSources {
  cache: number
  disk: number
}

/**
 * A blob record as this store writes it: `child` marks a blob stored only as part of a tree
 * (a file or subdirectory of storeDir); a put of the same bytes by the user clears it.
 * Records without it (older stores, blobs fetched from peers) count as top-level.
 */
interface StoredMeta extends BlobMeta {
  readonly child?: boolean
}

/** What `stat` tells about a held blob. */
export interface BlobStat extends BlobMeta {
  readonly ref: BlobRef
  /** True when the blob was stored only as part of a tree (listings can hide it). */
  readonly child?: boolean
}

/** Counters the plugin turns into Prometheus metrics. */
export interface StoreCounters {
  bytesIngested: number
  bytesStoredNew: number
  bytesReadDisk: number
  bytesReadCache: number
  integrityFailures: number
  orphansRemoved: number
}

/**
 * One node's content-addressed store: chunk files (or memory), the metadata index, and the
 * memory cache. Put streams input through FastCDC and BLAKE3 with a few chunk buffers of
 * memory, writes chunks (overlapped with cutting the next), then makes the blob visible in
 * one index batch. Every chunk read from a backend is verified before it is returned.
 */
export class LocalStore {
  readonly counters: StoreCounters = {
    bytesIngested: 0,
    bytesStoredNew: 0,
    bytesReadDisk: 0,
    bytesReadCache: 0,
    integrityFailures: 0,
    orphansRemoved: 0,
  }
  readonly #lock = new Mutex()
  readonly #pins = new KeyPins()
  readonly #active = new Set<Promise<unknown>>()
  readonly #commits: PendingCommit[] = []
  readonly #touched = new Map<string, number>()
  #touchTimer: ReturnType<typeof setTimeout> | undefined
  #committing = false
  #closed = false
  #closing: Promise<void> | undefined

  private constructor(
    readonly chunks: ChunkStore,
    readonly index: BlobIndex,
    readonly cache: MemoryCache,
    readonly hasher: HashBackend,
  ) {}

  static async open(options: LocalStoreOptions): Promise<LocalStore> {
    const hasher = options.hash ? await loadHashBackend(options.hash) : await defaultHashBackend()
    const cache = new MemoryCache(options.cacheBytes ?? defaultCacheBytes())
    if (options.dir === undefined) {
      if (!options.memory) throw new TypeError("Blobs.open needs { dir } or { memory: true }")
      return new LocalStore(new MemoryChunkStore(), new MemoryBlobIndex(), cache, hasher)
    }
    await mkdir(options.dir, { recursive: true })
    // the index first: its LOCK says whether another process owns this store, before the
    // chunk store clears its temp folder (which would be that process's in-flight writes)
    const index = await LevelBlobIndex.open(join(options.dir, "index"))
    let files: FileChunkStore
    try {
      files = await FileChunkStore.open(options.dir, options.durability)
    } catch (err) {
      await index.close().catch(() => {})
      throw err
    }
    const chunks = new TieredChunkStore(index.smallChunks(), files, SMALL_CHUNK_BYTES)
    const store = new LocalStore(chunks, index, cache, hasher)
    // a store not closed cleanly may hold chunk files no blob references yet (a killed put)
    if (await index.markOpen()) await store.sweepOrphans()
    return store
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Runs an operation tracked for close(): close waits for it; calls after close reject. */
  track<T>(op: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError())
    const p = op()
    this.#active.add(p)
    const done = () => void this.#active.delete(p)
    p.then(done, done)
    return p
  }

  assertOpen(): void {
    if (this.#closed) throw new ClosedError()
  }

  /** Ingests a stream and returns its ref. Nothing is visible until the final index batch. */
  put(source: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<BlobRef> {
    return this.track(() => this.#put(source, options))
  }

  async #put(source: AsyncIterable<Uint8Array>, options: PutOptions): Promise<BlobRef> {
    const cutter = new ChunkCutter(3)
    const entries: ManifestEntry[] = []
    const pinned = new Set<string>()
    const writes = new Set<Promise<void>>()
    let failure: unknown
    let size = 0
    let inlineCandidate: { hex: string; bytes: Uint8Array } | undefined
    const writeChunk = (hex: string, bytes: Uint8Array, buffer: Uint8Array | undefined) => {
      const w = this.chunks
        .write(hex, bytes)
        .then((fresh) => void (fresh && (this.counters.bytesStoredNew += bytes.length)))
        .catch((err) => void (failure ??= err))
        .finally(() => {
          cutter.release(buffer)
          writes.delete(w)
        })
      writes.add(w)
    }
    try {
      for await (const { bytes, buffer } of cutter.cut(source, {
        signal: options.signal,
        stable: options.stable,
        onBytes: options.onBytes,
        sizeHint: options.sizeHint,
      })) {
        if (failure) throw failure
        const hash = this.hasher.hash(bytes)
        const hex = toHex(hash)
        entries.push({ hash, length: bytes.length })
        size += bytes.length
        if (!pinned.has(hex)) {
          // pinned until commit: a concurrent delete or sweep must not remove it
          this.#pins.add(hex)
          pinned.add(hex)
        }
        if (this.index.inlinesChunks && bytes.length <= SMALL_CHUNK_BYTES && entries.length === 1) {
          // a small first chunk waits: if it is the whole blob it rides in the commit batch
          inlineCandidate = { hex, bytes: bytes.slice() }
          cutter.release(buffer)
          continue
        }
        if (inlineCandidate) {
          // more than one chunk after all: the held-back first chunk is written like the rest
          writeChunk(inlineCandidate.hex, inlineCandidate.bytes, undefined)
          inlineCandidate = undefined
        }
        writeChunk(hex, bytes, buffer)
      }
      await Promise.all(writes)
      if (failure) throw failure
      throwIfAborted(options.signal)
      this.counters.bytesIngested += size
      if (entries.length === 1) {
        const ref = BlobRef.of("chunk", size, entries[0]!.hash)
        await this.#commit(ref, undefined, [ref.hex], { tags: options.tags, child: options.child, inline: inlineCandidate })
        return ref
      }
      const manifest = encodeManifest({ size, entries })
      const ref = BlobRef.of("manifest", size, this.hasher.hash(manifest))
      await this.#commit(ref, manifest, entries.map((e) => toHex(e.hash)), { tags: options.tags, child: options.child })
      return ref
    } catch (err) {
      await Promise.allSettled(writes)
      const written = [...pinned]
      this.#unpin(pinned)
      await this.#dropUnreferenced(written)
      throw err
    } finally {
      this.#unpin(pinned)
    }
  }

  #unpin(pinned: Set<string>): void {
    for (const hex of pinned) this.#pins.release(hex)
    pinned.clear()
  }

  /**
   * Stores small bytes as exactly one chunk of the given kind (directory manifests: they
   * must never be cut by CDC, since their hash is the BLAKE3 of the whole encoding).
   */
  putSingle(bytes: Uint8Array, kind: BlobKind, options: { tags?: Record<string, string>; child?: boolean } = {}): Promise<BlobRef> {
    return this.track(async () => {
      if (bytes.length > CHUNK_MAX_BYTES) throw new TooLargeError(kind, bytes.length, CHUNK_MAX_BYTES)
      const ref = BlobRef.of(kind, bytes.length, this.hasher.hash(bytes))
      await this.#commitOneChunk(ref, bytes, { tags: options.tags, child: options.child })
      return ref
    })
  }

  /**
   * Stores and commits a blob that is exactly one chunk whose bytes are in hand: small ones
   * ride in the commit batch (indexes that keep small chunks), others are written first.
   */
  async #commitOneChunk(ref: BlobRef, bytes: Uint8Array, extra: Omit<CommitExtra, "inline"> = {}, write?: ChunkWriteOptions): Promise<void> {
    this.#pins.add(ref.hex)
    try {
      if (this.index.inlinesChunks && bytes.length <= SMALL_CHUNK_BYTES) {
        await this.#commit(ref, undefined, [ref.hex], { ...extra, inline: { hex: ref.hex, bytes } })
      } else {
        if (await this.chunks.write(ref.hex, bytes, write)) this.counters.bytesStoredNew += bytes.length
        await this.#commit(ref, undefined, [ref.hex], extra)
      }
    } finally {
      this.#pins.release(ref.hex)
    }
  }

  /**
   * Makes a blob visible (or merges tags when it already is). Commits queue up and are
   * written as groups, one LevelDB batch each (group commit): thousands of small blobs then
   * cost a few batches instead of one serialized write each.
   */
  #commit(ref: BlobRef, manifest: Uint8Array | undefined, chunks: string[], extra: CommitExtra = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#commits.push({ ref, manifest, chunks, tags: extra.tags, child: extra.child ?? false, inline: extra.inline, lastRead: extra.lastRead ?? 0, resolve, reject })
      if (!this.#committing) void this.#drainCommits()
    })
  }

  async #drainCommits(): Promise<void> {
    this.#committing = true
    try {
      while (this.#commits.length > 0) {
        const group = this.#commits.splice(0)
        try {
          await this.#lock.run(() => this.#commitGroup(group))
          for (const c of group) c.resolve()
        } catch (err) {
          for (const c of group) c.reject(err)
        }
      }
    } finally {
      this.#committing = false
    }
  }

  async #commitGroup(group: PendingCommit[]): Promise<void> {
    const now = Date.now()
    const fresh = new Map<string, BlobCommit>()
    for (const c of group) {
      const prior = fresh.get(c.ref.hex)
      if (prior) {
        // the same blob twice in one group: one record, tags merged (top-level if either is)
        fresh.set(c.ref.hex, { ...prior, meta: withChild({ ...prior.meta, tags: { ...prior.meta.tags, ...c.tags } }, (prior.meta as StoredMeta).child === true && c.child) })
        continue
      }
      const existing: StoredMeta | undefined = await this.index.getMeta(c.ref.hex)
      if (existing) {
        const promote = existing.child === true && !c.child
        if (promote || (c.tags && Object.entries(c.tags).some(([k, v]) => existing.tags[k] !== v))) {
          await this.index.setMeta(c.ref.hex, withChild({ ...existing, tags: { ...existing.tags, ...c.tags } }, existing.child === true && c.child))
        }
        continue
      }
      const meta = withChild({ kind: c.ref.kind, size: c.ref.size, tags: { ...c.tags }, created: now, lastRead: c.lastRead, chunks: c.chunks.length }, c.child)
      if (c.inline && !(await this.chunks.has(c.inline.hex, c.inline.bytes.length))) {
        this.counters.bytesStoredNew += c.inline.bytes.length
        fresh.set(c.ref.hex, { hex: c.ref.hex, meta, manifest: c.manifest, chunks: c.chunks, inline: c.inline })
      } else fresh.set(c.ref.hex, { hex: c.ref.hex, meta, manifest: c.manifest, chunks: c.chunks })
    }
    if (fresh.size > 0) await this.index.commitMany([...fresh.values()])
  }

  /** After a failed put: removes chunk files this put wrote that nothing references. */
  async #dropUnreferenced(hexes: string[]): Promise<void> {
    await this.#lock.run(async () => {
      const counts = await this.index.refcounts(hexes)
      for (let i = 0; i < hexes.length; i++) {
        const hex = hexes[i]!
        // another in-flight put may share this chunk: it keeps it
        if (counts[i] === 0 && !this.#pins.has(hex)) await this.chunks.remove(hex).catch(() => {})
      }
    })
  }

  /**
   * Stores chunk bytes already verified by the caller (a mesh transfer) and returns once
   * they are on disk. They stay unreferenced (swept as orphans) until a blob commit.
   */
  storeVerifiedChunk(hex: string, bytes: Uint8Array, options: { cache?: boolean } = {}): Promise<void> {
    return this.track(async () => {
      if (await this.chunks.write(hex, bytes, FETCHED)) this.counters.bytesStoredNew += bytes.length
      // a caller reusing `bytes` (a pooled buffer) must not leave it in the cache
      if (options.cache ?? true) this.cache.set(hex, bytes)
    })
  }

  /** Stores and commits a one-chunk blob that arrived verified from a peer (small ones in one batch). */
  commitFetchedChunk(ref: BlobRef, bytes: Uint8Array): Promise<void> {
    return this.track(async () => {
      await this.#commitOneChunk(ref, bytes, { lastRead: Date.now() }, FETCHED)
      this.cache.set(ref.hex, bytes)
    })
  }

  /** Commits a blob whose chunks (and manifest) arrived from peers and were verified. */
  commitFetched(ref: BlobRef, manifest: Uint8Array | undefined): Promise<void> {
    return this.track(async () => {
      const chunks = manifest ? decodeManifest(manifest, ref.size).entries.map((e) => toHex(e.hash)) : [ref.hex]
      await this.#commit(ref, manifest, chunks, { lastRead: Date.now() })
    })
  }

  /** True when the blob is committed locally. */
  async hasBlob(ref: BlobRef): Promise<boolean> {
    return (await this.meta(ref)) !== undefined
  }

  /** The committed blob's metadata, or undefined when it is not held here. */
  meta(ref: BlobRef): Promise<BlobMeta | undefined> {
    return this.index.getMeta(ref.hex)
  }

  /** True when the chunk's bytes are on this node (committed or not). */
  hasChunk(hex: string, length?: number): Promise<boolean> {
    return this.cache.has(hex) ? Promise.resolve(true) : this.chunks.has(hex, length)
  }

  /**
   * Reads a chunk and verifies it: cache (already verified) → backend. Returns undefined
   * when absent. A corrupt file is removed (so a re-put or a peer can heal it) and gives
   * IntegrityError: never wrong bytes.
   */
  async readChunk(hex: string, expectedLength?: number, sources?: LocalSources): Promise<Uint8Array | undefined> {
    const cached = this.cache.get(hex)
    if (cached) {
      this.counters.bytesReadCache += cached.length
      if (sources) sources.cache += cached.length
      return cached
    }
    const bytes = await this.chunks.read(hex, expectedLength)
    if (bytes === undefined) return undefined
    const actual = toHex(this.hasher.hash(bytes))
    if (actual !== hex || (expectedLength !== undefined && bytes.length !== expectedLength)) {
      this.counters.integrityFailures++
      await this.chunks.remove(hex).catch(() => {})
      throw new IntegrityError(hex, actual, "chunk file on disk")
    }
    this.counters.bytesReadDisk += bytes.length
    if (sources) sources.disk += bytes.length
    this.cache.set(hex, bytes)
    return bytes
  }

  /** The verified manifest of a committed manifest blob, or undefined when not held. */
  async manifestOf(ref: BlobRef): Promise<Manifest | undefined> {
    const bytes = await this.index.getManifest(ref.hex)
    if (bytes === undefined) return undefined
    const actual = toHex(this.hasher.hash(bytes))
    if (actual !== ref.hex) {
      this.counters.integrityFailures++
      throw new IntegrityError(ref.hex, actual, "manifest in index")
    }
    return decodeManifest(bytes, ref.size)
  }

  /** Raw manifest bytes (for serving peers). */
  manifestBytes(hex: string): Promise<Uint8Array | undefined> {
    return this.index.getManifest(hex)
  }

  /**
   * Streams a committed blob's verified bytes, reading one chunk ahead so disk, hashing and
   * the consumer overlap. Throws NotFoundError when the blob is not held here.
   */
  async *read(ref: BlobRef, options: { signal?: AbortSignal; sources?: LocalSources; meta?: BlobMeta } = {}): AsyncGenerator<Uint8Array> {
    this.assertOpen()
    // `meta`: the caller just looked it up (saves a second index read per small file)
    const meta = options.meta ?? (await this.index.getMeta(ref.hex))
    if (meta === undefined) throw new NotFoundError(ref.toString())
    this.#touch(ref.hex, meta)
    if (ref.kind !== "manifest") {
      const bytes = await this.readChunk(ref.hex, ref.size, options.sources)
      if (bytes === undefined) throw new NotFoundError(ref.hex)
      yield bytes
      return
    }
    const manifest = await this.manifestOf(ref)
    if (manifest === undefined) throw new NotFoundError(ref.toString())
    const load = (e: ManifestEntry) =>
      this.readChunk(toHex(e.hash), e.length, options.sources).then((b) => {
        if (b === undefined) throw new NotFoundError(toHex(e.hash))
        return b
      })
    let next: Promise<Uint8Array> | undefined = load(manifest.entries[0]!)
    for (let i = 0; i < manifest.entries.length; i++) {
      throwIfAborted(options.signal)
      const current: Promise<Uint8Array> = next!
      next = i + 1 < manifest.entries.length ? load(manifest.entries[i + 1]!) : undefined
      // a failing read-ahead must not surface as an unhandled rejection if we stop early
      next?.catch(() => {})
      yield await current
    }
  }

  /** Last-read times are coarse (a minute) and written in batches, never one write per read. */
  #touch(hex: string, meta: BlobMeta): void {
    const now = Date.now()
    if (now - meta.lastRead < 60_000) return
    this.#touched.set(hex, now)
    this.#touchTimer ??= setTimeout(() => void this.#flushTouched(), 1000).unref()
  }

  async #flushTouched(): Promise<void> {
    this.#touchTimer = undefined
    if (this.#touched.size === 0) return
    const times = new Map(this.#touched)
    this.#touched.clear()
    await this.#lock.run(() => this.index.touchMany(times)).catch(() => {})
  }

  async stat(ref: BlobRef): Promise<BlobStat> {
    this.assertOpen()
    const meta = await this.index.getMeta(ref.hex)
    if (meta === undefined || meta.kind !== ref.kind || meta.size !== ref.size) throw new NotFoundError(ref.toString())
    return { ref, ...meta }
  }

  /** Every blob held, optionally only those with tag `k=v`. */
  async *list(options: { tag?: string } = {}): AsyncGenerator<BlobStat> {
    this.assertOpen()
    const [k, v] = options.tag === undefined ? [] : splitTag(options.tag)
    for await (const [hex, meta] of this.index.entries()) {
      if (k !== undefined && meta.tags[k] !== v) continue
      yield { ref: BlobRef.of(meta.kind, meta.size, fromHex(hex)!), ...meta }
    }
  }

  /** Operator action: forgets a blob and removes chunks nothing else references. */
  delete(ref: BlobRef): Promise<boolean> {
    return this.track(() =>
      this.#lock.run(async () => {
        const meta = await this.index.getMeta(ref.hex)
        if (meta === undefined) return false
        const chunks = meta.kind === "manifest" ? ((await this.manifestOf(ref))?.entries ?? []).map((e) => toHex(e.hash)) : [ref.hex]
        const freed = await this.index.remove(ref.hex, chunks)
        for (const hex of freed) {
          this.cache.delete(hex)
          if (!this.#pins.has(hex)) await this.chunks.remove(hex)
        }
        return true
      }),
    )
  }

  /** Hard durability barrier: every put that resolved before this call survives power loss. */
  flush(): Promise<void> {
    return this.track(async () => {
      await this.chunks.sync()
      await this.index.sync()
    })
  }

  /** Removes chunk files that no committed blob references and no put is writing. */
  async sweepOrphans(): Promise<number> {
    let removed = 0
    await this.#lock.run(async () => {
      const batch: string[] = []
      const flush = async () => {
        const counts = await this.index.refcounts(batch)
        for (let i = 0; i < batch.length; i++) {
          if (counts[i] === 0 && !this.#pins.has(batch[i]!)) {
            await this.chunks.remove(batch[i]!)
            removed++
          }
        }
        batch.length = 0
      }
      for await (const hex of this.chunks.list()) {
        batch.push(hex)
        if (batch.length >= 1000) await flush()
      }
      await flush()
    })
    this.counters.orphansRemoved += removed
    return removed
  }

  /** Idempotent: waits for running operations, then closes the index and chunk store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true
      await Promise.allSettled([...this.#active])
      if (this.#touchTimer) clearTimeout(this.#touchTimer)
      await this.#flushTouched()
      this.cache.clear()
      try {
        await this.index.markClean()
        await this.index.close()
        await this.chunks.close()
      } catch (err) {
        throw new StorageError("close", { cause: err })
      }
    })()
    return this.#closing
  }
}

/** The record with `child` set (true) or left out (top-level). */
function withChild(meta: StoredMeta, child: boolean): StoredMeta {
  const { child: _, ...rest } = meta
  return child ? { ...rest, child: true } : rest
}

function splitTag(tag: string): [string, string] {
  const i = tag.indexOf("=")
  return i < 0 ? [tag, ""] : [tag.slice(0, i), tag.slice(i + 1)]
}
