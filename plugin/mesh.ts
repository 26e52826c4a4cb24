import type { NatsConnection } from "@nats-io/nats-core"
import { type AnyFoldDefinition, type FoldLimits, Materializer } from "../folds/index.ts"
import { BlobRef } from "../storage/format/blob-ref.ts"
import { ClosedError, NoHolderError, PermissionError, throwIfAborted, type DatafortsError } from "../storage/format/errors.ts"
import { toHex } from "../storage/format/hex.ts"
import { decodeManifest, type ManifestEntry } from "../storage/format/manifest.ts"
import type { LocalStore } from "../storage/local-store.ts"
import { BATCH_CHUNK_MAX_BYTES, batchSubject, ChunkReceiver, fetchBatch, type Sender, serveBatches, startSender } from "../transfer/index.ts"
import type { Denial } from "../transfer/nats-denials.ts"
import { ownedCopy } from "./buffer-pool.ts"
import { BackgroundStores } from "./background-stores.ts"
import { ByteBudget } from "./byte-budget.ts"
import { ChunkOrder } from "./chunk-order.ts"
import { SlowStart } from "./slow-start.ts"
import { storeChunkSource } from "./chunk-source.ts"
import { forEachBounded } from "./concurrency.ts"
import { type CountingFoldBus, natsFoldBus, onConnectionClosed, watchDenials } from "./nats-bus.ts"
import { borrowReceiveArena, returnReceiveArena } from "./receive-arenas.ts"
import { HolderPenalties } from "./holder-penalties.ts"
import { TimeoutError } from "../storage/format/errors.ts"
import { type ConnectionWatch, watchConnection } from "./nats-bus.ts"

/** Where a read's bytes came from. */
export interface ReadSources {
  cache: number
  disk: number
  /** Bytes per peer node id. */
  peers: Record<string, number>
}

export const emptySources = (): ReadSources => ({ cache: 0, disk: 0, peers: {} })

export interface AttachOptions {
  /** An open nats.js v3 connection; Dataforts never closes it. */
  nats: NatsConnection
  /** This node's id ([A-Za-z0-9_-]); unique on the bus. */
  node: string
  /** Zone: holders in the same zone are preferred. */
  zone?: string
  /** Subject prefix (default `dataforts`). */
  prefix?: string
  /** Heartbeat interval (default 1000 ms). */
  heartbeatMs?: number
  /** How long a read waits for any holder to be known before NO_HOLDER (default 3000 ms). */
  discoveryTimeoutMs?: number
  /** A holder sending nothing for this long is abandoned (default 5000 ms). */
  idleTimeoutMs?: number
  /** Chunk bytes one read or fetchBlob may have in flight: fetching, handed out or being written (default 64 MiB). */
  readAheadBytes?: number
  /** Chunk bytes all reads of this node may have in flight (default 256 MiB). */
  nodeBudgetBytes?: number
  /** Chunks one read fetches at once (default 6). */
  chunkConcurrency?: number
  /** Caps on what peers can make this node hold in its folds (defaults: folds/README.md § Forged traffic). */
  foldLimits?: FoldLimits
  /** Application folds to materialize beside Dataforts' own (see `defineFold`). */
  folds?: AnyFoldDefinition[]
}

/** Longest Mesh.attach waits for the round trip that tells whether the server refused a subscription. */
const PERMISSION_CHECK_MS = 5000

/** Small chunks asked for in one batch request. */
const BATCH_GROUP = 256

/** A read whose NATS connection stays down this long fails TIMEOUT (nats.js may retry for longer). */
const OUTAGE_WAIT_MS = 30_000


/**
 * Chunk writes a read or fetch lets run behind it. Under load a direct write of a ~5 MiB
 * chunk took ~18 ms here (several thread-pool round trips on busy cores), longer than the
 * next chunk's transfer: with two the network waited (fetchBlob 0.50× raw pub/sub), with
 * four it does not (0.62×).
 */
const BACKGROUND_WRITES = 4

/**
 * The mesh side of a node: folds (who holds what, who is alive, heat), the holder's sender,
 * and the get path for blobs this node does not hold. Arrived chunks are stored and
 * advertised as they land (the reader becomes a holder), and the blob is advertised whole
 * once committed.
 */
export class Mesh {
  readonly folds: Materializer
  /** The folds' bus: its `publishesDenied()` counts fold facts the server refused. */
  readonly bus: CountingFoldBus
  readonly sender: Sender
  readonly receiver: ChunkReceiver
  readonly batches: { served(): number; close(): void }
  readonly #budget: ByteBudget
  /** Holders that failed us: tried last for a while (longer for repeat offenders), forgiven when they serve. */
  readonly #penalties = new HolderPenalties()
  /** Receive buffers, page-aligned: a received chunk is written to disk straight from its buffer (O_DIRECT, no staging copy). Lent process-wide. */
  readonly #pool = borrowReceiveArena()
  /** Holders abandoned or blamed, by error code (for operators and tests). */
  readonly holderFailures: Record<string, number> = {}
  readonly #opts: Required<Omit<AttachOptions, "zone" | "nats" | "folds" | "foldLimits">> & { zone?: string }
  #closed = false
  #closing: Promise<void> | undefined
  /** The connection closed under this mesh (which then closed itself): reads say NO_HOLDER. */
  #connectionClosed = false
  readonly #unwatchConnection: () => void
  /** The connection's outages (a server restart, failover, slow-consumer cut-off): reads wait them out. */
  readonly #link: ConnectionWatch
  /** Chunk fetches started over after NO_HOLDER (a holder not reachable for a moment, e.g. after a server fault). */
  refetches = 0

  /** Times this node's NATS connection came back after dropping (while the mesh was open). */
  get reconnects(): number {
    return this.#link.reconnects
  }

  private constructor(
    readonly store: LocalStore,
    readonly nc: NatsConnection,
    options: AttachOptions,
  ) {
    this.#opts = {
      node: options.node,
      prefix: options.prefix ?? "dataforts",
      heartbeatMs: options.heartbeatMs ?? 1000,
      discoveryTimeoutMs: options.discoveryTimeoutMs ?? 3000,
      idleTimeoutMs: options.idleTimeoutMs ?? 5000,
      readAheadBytes: options.readAheadBytes ?? 64 << 20,
      nodeBudgetBytes: options.nodeBudgetBytes ?? 256 << 20,
      chunkConcurrency: options.chunkConcurrency ?? 6,
      ...(options.zone === undefined ? {} : { zone: options.zone }),
    }
    this.#budget = new ByteBudget(this.#opts.nodeBudgetBytes)
    this.bus = natsFoldBus(nc)
    this.folds = new Materializer({
      bus: this.bus,
      node: options.node,
      prefix: this.#opts.prefix,
      heartbeatMs: this.#opts.heartbeatMs,
      ...(options.zone === undefined ? {} : { zone: options.zone }),
      ...(options.folds === undefined ? {} : { folds: options.folds }),
      ...options.foldLimits,
    })
    this.sender = startSender(nc, { node: options.node, prefix: this.#opts.prefix, source: storeChunkSource(store) })
    this.#link = watchConnection(nc)
    this.receiver = new ChunkReceiver(nc, { prefix: this.#opts.prefix, link: this.#link })
    this.batches = serveBatches(nc, { node: options.node, prefix: this.#opts.prefix, source: storeChunkSource(store) })
    // the caller may close its connection before (or instead of) closing the node: every
    // timer, subscription and transfer of the mesh stops then, and reads fail NO_HOLDER
    this.#unwatchConnection = onConnectionClosed(nc, () => {
      this.#connectionClosed = true
      void this.close().catch(() => {})
    })
  }

  /** Starts the folds and the holder, and advertises every blob held here. */
  static async attach(store: LocalStore, options: AttachOptions): Promise<Mesh> {
    if (options.nats.isClosed()) throw new ClosedError("NATS connection")
    // refusals of our subscriptions come back as statuses, after the SUBs: watch from before
    const denials: Denial[] = []
    const unwatch = watchDenials(options.nats, (d) => denials.push(d))
    let mesh: Mesh | undefined
    try {
      mesh = new Mesh(store, options.nats, options)
      mesh.folds.start()
      await mesh.#checkSubscriptions(denials)
      const held: string[] = []
      for await (const s of store.list()) held.push(s.ref.hex)
      mesh.#have(held, "blob")
    } catch (err) {
      await mesh?.close().catch(() => {})
      throw err
    } finally {
      unwatch()
    }
    return mesh
  }

  /**
   * PERMISSION when the server refused any subscription this node needs: one round trip
   * (the server answers SUBs in order, so its -ERRs come before the PONG), then a turn of
   * the event loop for nats.js to report them. A node that half-works (serving nothing,
   * hearing no one) would be worse than one that does not start. The round trip is bounded:
   * a connection that is reconnecting (or a server that does not answer) is not checked,
   * the node starts as it would without permissions, and reads fail PERMISSION if refused.
   */
  async #checkSubscriptions(denials: Denial[]): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.nc.flush().catch(() => {}), new Promise((r) => (timer = setTimeout(r, PERMISSION_CHECK_MS)))])
    clearTimeout(timer)
    await new Promise((r) => setTimeout(r, 0))
    const ours = new Set([...this.bus.subscribedSubjects(), this.sender.subject, batchSubject(this.#opts.prefix, this.#opts.node)])
    const refused = denials.find((d) => d.operation === "subscribe" && ours.has(d.subject))
    if (refused !== undefined) throw new PermissionError("subscribe", refused.subject)
  }

  /** Bytes of chunks this node's reads hold right now (in flight, handed out, or being written); at most `nodeBudgetBytes` (but one). */
  get bytesInFlight(): number {
    return this.#budget.used
  }

  get node(): string {
    return this.#opts.node
  }

  advertise(ref: BlobRef): void {
    this.#have([ref.hex], "blob")
  }

  withdraw(ref: BlobRef): void {
    this.#drop([ref.hex])
  }

  /** Adverts go out while the mesh is open; after, there is nobody to tell (a no-op). */
  #have(hexes: string[], kind: "blob" | "chunk"): void {
    if (!this.#closed && hexes.length > 0) this.folds.have(hexes, kind)
  }

  #drop(hexes: string[]): void {
    if (!this.#closed && hexes.length > 0) this.folds.drop(hexes)
  }

  /** Reads from peers need an open mesh: NO_HOLDER once the connection closed, else CLOSED once closed. */
  #checkOpen(hex: string): void {
    if (this.#connectionClosed) throw new NoHolderError(hex, "the NATS connection is closed")
    if (this.#closed) throw new ClosedError("mesh")
  }

  recordRead(ref: BlobRef): void {
    if (!this.#closed) this.folds.recordRead(ref.hex)
  }

  /**
   * Live holders to ask for a chunk, in order: peers that hold the chunk itself (readers
   * part-way through the blob) first, then holders of the whole blob, each group rotated by
   * `spread` among its nearest three. Asking peers first is what keeps many readers of one
   * blob from all asking its producer. Holders that failed us recently go last.
   */
  holdersFor(chunkHex: string, blobHex: string, spread = 0): string[] {
    const peers = this.folds.nearestHolders(chunkHex)
    const whole = blobHex === chunkHex ? [] : this.folds.nearestHolders(blobHex).filter((h) => !peers.includes(h))
    const now = Date.now()
    const ok = (h: string) => !this.#penalties.isPenalized(h, now)
    const ordered = [...rotate(peers.filter(ok), spread), ...rotate(whole.filter(ok), spread)]
    const avoided = [...peers, ...whole].filter((h) => !ok(h))
    return [...ordered, ...avoided]
  }

  /** True while `holder` is avoided after failing a read (it is then asked last). */
  isPenalized(holder: string): boolean {
    return this.#penalties.isPenalized(holder)
  }

  /** A holder failed a read with `code`: counted, and asked last for a while. */
  #blame(holder: string, code: string): void {
    this.#penalties.blame(holder)
    this.holderFailures[code] = (this.holderFailures[code] ?? 0) + 1
  }

  /** Waits (bounded) until some holder of the blob is known; NO_HOLDER otherwise. */
  async #awaitHolders(hex: string, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.#opts.discoveryTimeoutMs
    this.#checkOpen(hex)
    while (this.folds.nearestHolders(hex).length === 0) {
      throwIfAborted(signal)
      this.#checkOpen(hex)
      if (!this.#mayWait(deadline)) throw new NoHolderError(hex, "no live node advertises it")
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  /**
   * Whether a read that found no reachable holder keeps waiting: until `deadline`; while the
   * connection is down (for at most OUTAGE_WAIT_MS, then TIMEOUT); and for the discovery
   * timeout after it came back (holders look dead until their next heartbeat reaches us).
   */
  #mayWait(deadline: number): boolean {
    const now = Date.now()
    if (this.#link.down) {
      if (now - this.#link.downSince > OUTAGE_WAIT_MS) throw new TimeoutError(`the NATS connection has been down for ${OUTAGE_WAIT_MS} ms`)
      return true
    }
    return now <= Math.max(deadline, this.#link.reconnectedAt + this.#opts.discoveryTimeoutMs)
  }

  /** Fetches one chunk (verified) from the nearest holders, spreading by `spread` over close peers. */
  async #fetchChunk(hex: string, blobHex: string, expectedLength: number | undefined, spread: number, sources: ReadSources, signal: AbortSignal, into?: (length: number) => Uint8Array): Promise<Uint8Array> {
    // NO_HOLDER is retried every 100 ms within the discovery timeout of the first failure:
    // in a cluster a holder's subscription can reach our server after its adverts did ("no
    // responders" for a moment), and after a server fault (ours or the holder's: a restart,
    // a failover, a slow-consumer cut-off) holders look dead until their next heartbeat.
    // While our own connection is down nobody can be asked: wait for it (bounded), and count
    // the window again from its return. The chunk starts over; chunks already here stay.
    let deadline: number | undefined
    for (;;) {
      try {
        return await this.#fetchChunkOnce(hex, blobHex, expectedLength, spread, sources, signal, into)
      } catch (err) {
        if (!(err instanceof NoHolderError) || signal.aborted || this.#closed) throw err
        deadline ??= Date.now() + this.#opts.discoveryTimeoutMs
        if (!this.#mayWait(deadline)) throw err
        this.refetches++
        await new Promise((r) => setTimeout(r, 100))
        this.#checkOpen(hex)
      }
    }
  }

  async #fetchChunkOnce(hex: string, blobHex: string, expectedLength: number | undefined, spread: number, sources: ReadSources, signal: AbortSignal, into?: (length: number) => Uint8Array): Promise<Uint8Array> {
    const report = await this.receiver.fetch({
      hash: hex,
      holders: () => this.holdersFor(hex, blobHex, spread),
      ...(into ? { into } : {}),
      hashBackend: this.store.hasher,
      ...(expectedLength === undefined ? {} : { expectedLength }),
      idleTimeoutMs: this.#opts.idleTimeoutMs,
      signal,
      onHolderFailure: (holder: string, error: DatafortsError) => {
        this.#blame(holder, error.code)
      },
    })
    // a holder whose bytes verified is forgiven (one bad moment does not keep it at the back)
    for (const holder of report.servedBy.keys()) if (!report.failures.some((f) => f.holder === holder)) this.#penalties.credit(holder)
    for (const [peer, n] of report.servedBy) sources.peers[peer] = (sources.peers[peer] ?? 0) + n
    return report.bytes
  }

  /** A one-chunk blob's bytes from here if present (verified), else from peers (the caller commits it). */
  async #wholeChunk(ref: BlobRef, sources: ReadSources, signal: AbortSignal): Promise<Uint8Array> {
    const local = await this.store.readChunk(ref.hex, ref.size, sources).catch(() => undefined)
    return local ?? (await this.#fetchChunk(ref.hex, ref.hex, ref.size, 0, sources, signal))
  }

  /**
   * Fetches a chunk (verified) into pooled buffers (reused: no fresh memory per chunk), then
   * takes a write slot in `stores` (waiting while all are busy: the network waits for the
   * disk). The caller adds the write and hands `taken` back to the pool once done with `bytes`.
   */
  async #receiveForStore(hex: string, length: number, blobHex: string, spread: number, sources: ReadSources, signal: AbortSignal, stores: BackgroundStores): Promise<{ bytes: Uint8Array; taken: Uint8Array[] }> {
    const taken: Uint8Array[] = []
    try {
      const bytes = await this.#fetchChunk(hex, blobHex, length, spread, sources, signal, (n) => {
        const b = this.#pool.take(n)
        taken.push(b)
        return b
      })
      await stores.reserve(signal)
      return { bytes, taken }
    } catch (err) {
      this.#release(taken)
      throw err
    }
  }

  /**
   * Takes `length` from `perRead` and from the node budget (in that order, both or neither);
   * returns the function that gives both back.
   */
  async #acquireBudgets(perRead: ByteBudget, length: number, signal: AbortSignal): Promise<() => void> {
    await perRead.acquire(length, signal)
    await this.#budget.acquire(length, signal).catch((err: unknown) => {
      perRead.release(length)
      throw err
    })
    return () => {
      perRead.release(length)
      this.#budget.release(length)
    }
  }

  /** Stores a verified chunk that arrived and advertises it (this node can serve it now). */
  async #storeReceived(hex: string, bytes: Uint8Array): Promise<void> {
    await this.store.storeVerifiedChunk(hex, bytes, { cache: false })
    this.#have([hex], "chunk")
  }

  #release(taken: Uint8Array[]): void {
    for (const b of taken) this.#pool.release(b)
  }

  /**
   * A manifest chunk for a streaming read: from here (verified) or fetched into a pooled
   * buffer, whose write to disk goes on in `stores` (once a write slot is free).
   * `release` must be called once the caller is done with `bytes`; the chunk's memory is
   * freed when that and its write are done.
   */
  async #readChunk(hex: string, length: number, blobHex: string, spread: number, sources: ReadSources, signal: AbortSignal, cache: boolean, stores: BackgroundStores, free: () => void): Promise<{ bytes: Uint8Array; pooled: boolean; release: () => void }> {
    const local = await this.store.readChunk(hex, length, sources).catch(() => undefined)
    if (local) return { bytes: local, pooled: false, release: free }
    const { bytes, taken } = await this.#receiveForStore(hex, length, blobHex, spread, sources, signal, stores)
    if (cache) this.store.cache.set(hex, bytes.slice())
    let holds = 2 // the caller, and the write
    const release = () => {
      if (--holds > 0) return
      this.#release(taken)
      free()
    }
    stores.add(this.#storeReceived(hex, bytes), release)
    return { bytes, pooled: true, release }
  }

  async #manifestOf(ref: BlobRef, sources: ReadSources, signal: AbortSignal): Promise<{ bytes: Uint8Array; entries: readonly ManifestEntry[] }> {
    const bytes = await this.#fetchChunk(ref.hex, ref.hex, undefined, 0, sources, signal)
    return { bytes, entries: decodeManifest(bytes, ref.size).entries }
  }

  /** A one-chunk blob that arrived: stored and committed together, then advertised. */
  async #completeChunk(ref: BlobRef, bytes: Uint8Array): Promise<void> {
    await this.store.commitFetchedChunk(ref, bytes)
    this.#have([ref.hex], "blob")
  }

  /** After every chunk is here: commit, advertise the whole blob, retire chunk adverts. */
  async #complete(ref: BlobRef, manifest: Uint8Array | undefined, chunkHexes: string[]): Promise<void> {
    await this.store.commitFetched(ref, manifest)
    this.#have([ref.hex], "blob")
    this.#drop(chunkHexes.filter((h) => h !== ref.hex))
  }

  /**
   * Streams a blob from the mesh in order, with up to `chunkConcurrency` chunks and
   * `readAheadBytes` in flight (and the node-wide budget). Breaking out stops every fetch.
   * `borrowed`: a part is valid only until the next is asked for (callers that copy or write
   * each part first), which saves a copy per chunk.
   */
  async *read(ref: BlobRef, options: { signal?: AbortSignal; sources?: ReadSources; borrowed?: boolean } = {}): AsyncGenerator<Uint8Array> {
    const sources = options.sources ?? emptySources()
    const ctrl = new AbortController()
    const signal = options.signal ? AbortSignal.any([options.signal, ctrl.signal]) : ctrl.signal
    try {
      await this.#awaitHolders(ref.hex, signal)
      if (ref.kind !== "manifest") {
        const bytes = await this.#wholeChunk(ref, sources, signal)
        await this.#completeChunk(ref, bytes)
        yield bytes
        return
      }
      const manifest = await this.#manifestOf(ref, sources, signal)
      const hexes = manifest.entries.map((e) => toHex(e.hash))
      const perRead = new ByteBudget(this.#opts.readAheadBytes)
      // scan resistance: a blob above 1/8 of the memory cache streams through without
      // evicting what is hot there (its chunks are on disk and in the page cache anyway)
      const cache = ref.size <= this.store.cache.capacity / 8
      const stores = new BackgroundStores(BACKGROUND_WRITES, (err) => ctrl.abort(err))
      const pending: Array<Promise<{ bytes: Uint8Array; pooled: boolean; release: () => void }>> = []
      let next = 0
      const start = () => {
        const i = next++
        const e = manifest.entries[i]!
        const p = (async () => {
          const free = await this.#acquireBudgets(perRead, e.length, signal)
          return this.#readChunk(hexes[i]!, e.length, ref.hex, i, sources, signal, cache, stores, free).catch((err) => {
            free()
            throw err
          })
        })()
        p.catch(() => {})
        pending.push(p)
      }
      try {
        for (let i = 0; i < manifest.entries.length; i++) {
          while (next < manifest.entries.length && next - i < this.#opts.chunkConcurrency) start()
          const { bytes, pooled, release } = await pending[i]!
          pending[i] = undefined as never
          if (options.borrowed) {
            // the caller is done with a part when it asks for the next: lend the pooled bytes
            try {
              throwIfAborted(options.signal)
              yield bytes
            } finally {
              release()
            }
            continue
          }
          // the caller owns what it is given: a pooled chunk goes out as a copy made just now,
          // which dies young if the caller drops it (chunks that lived through a whole fetch
          // were promoted, and each ~64 MiB of them cost a full GC: ~64 per GiB measured)
          const out = pooled ? ownedCopy(bytes) : bytes
          release()
          throwIfAborted(options.signal)
          yield out
        }
      } catch (err) {
        stores.throwIfFailed()
        throw err
      } finally {
        // chunks fetched ahead that the caller never took (it broke out, or a fetch failed)
        for (const p of pending) void p?.then((got) => got.release(), () => {})
      }
      await stores.settle()
      stores.throwIfFailed()
      await this.#complete(ref, manifest.bytes, hexes)
    } finally {
      ctrl.abort()
    }
  }

  /**
   * Makes a blob local (stored, committed, advertised) without streaming it to the caller.
   * Chunks are fetched in a node-specific order, picking chunks peers already hold first
   * (ChunkOrder) and asking those peers first, so many readers of one blob share the load
   * instead of all asking its producer.
   */
  async fetchBlob(ref: BlobRef, options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {}): Promise<ReadSources> {
    const sources = emptySources()
    if (await this.store.hasBlob(ref)) return sources
    const signal = options.signal ?? new AbortController().signal
    await this.#awaitHolders(ref.hex, signal)
    if (ref.kind !== "manifest") {
      const bytes = await this.#wholeChunk(ref, sources, signal)
      options.onBytes?.(bytes.length)
      await this.#completeChunk(ref, bytes)
      return sources
    }
    const manifest = await this.#manifestOf(ref, sources, signal)
    const hexes = manifest.entries.map((e) => toHex(e.hash))
    const self = this.#opts.node
    const order = new ChunkOrder(hexes.length, self, (i) => this.folds.holdersOf(hexes[i]!).some((h) => h !== self && this.folds.isAlive(h)))
    // a chunk's slot frees as soon as its bytes are verified: writing it to disk goes on in
    // the background (its memory still counted in the node budget), so slow storage does not
    // idle the network; a failed write stops the rest
    const ctrl = new AbortController()
    const stores = new BackgroundStores(BACKGROUND_WRITES, (err) => ctrl.abort(err))
    const rampUp = new SlowStart()
    // bytes fetching or being written, as for a read: so the receive arena covers them whatever
    // the chunk sizes, and peak memory does not grow with the number of chunks
    const inFlight = new ByteBudget(this.#opts.readAheadBytes)
    try {
      await forEachBounded(
        hexes.keys(),
        this.#opts.chunkConcurrency,
        async (k, s) => {
          await rampUp.ready(k, s)
          // which chunk is decided when a slot frees up, so it can be one a peer got meanwhile
          const i = order.next()!
          const hex = hexes[i]!
          const len = manifest.entries[i]!.length
          const free = await this.#acquireBudgets(inFlight, len, s)
          let handedOff = false
          try {
            if (!(await this.store.hasChunk(hex, len))) {
              const { bytes, taken } = await this.#receiveForStore(hex, len, ref.hex, i, sources, s, stores)
              stores.add(this.#storeReceived(hex, bytes), () => {
                this.#release(taken)
                free()
              })
              handedOff = true
            }
            options.onBytes?.(len)
            rampUp.arrived()
          } finally {
            if (!handedOff) free()
          }
        },
        AbortSignal.any([signal, ctrl.signal]),
      )
    } catch (err) {
      stores.throwIfFailed()
      throw err
    } finally {
      await stores.settle()
    }
    stores.throwIfFailed()
    await this.#complete(ref, manifest.bytes, hexes)
    return sources
  }

  /**
   * Makes many small one-chunk blobs local in batches (one request/reply per holder and up
   * to 512 KiB), so a tree of tiny files is not bound by per-file round trips. Returns the
   * refs still missing (not small, not offered, or corrupt): the caller reads those one by one.
   * `fetched` collects the hashes this call brought here.
   */
  async ensureLocal(refs: readonly BlobRef[], options: { signal?: AbortSignal; sources?: ReadSources; fetched?: Set<string> } = {}): Promise<BlobRef[]> {
    const wanted = new Map<string, BlobRef>()
    /** Blobs known to be here (held before, or committed by this call). */
    const here = new Set<string>()
    for (const r of refs) {
      if (r.kind === "manifest" || r.size > BATCH_CHUNK_MAX_BYTES || wanted.has(r.hex) || here.has(r.hex)) continue
      if (await this.store.hasBlob(r)) here.add(r.hex)
      else wanted.set(r.hex, r)
    }
    // group by the nearest holder of each blob
    const byHolder = new Map<string, string[]>()
    for (const hex of wanted.keys()) {
      const holder = this.holdersFor(hex, hex)[0]
      if (holder === undefined) continue
      const list = byHolder.get(holder) ?? []
      list.push(hex)
      byHolder.set(holder, list)
    }
    const groups: Array<[string, string[]]> = []
    for (const [holder, hexes] of byHolder) for (let i = 0; i < hexes.length; i += BATCH_GROUP) groups.push([holder, hexes.slice(i, i + BATCH_GROUP)])
    await forEachBounded(
      groups,
      4,
      async ([holder, hexes]) => {
        const got = await fetchBatch(this.nc, { holder, hashes: hexes, hashBackend: this.store.hasher, prefix: this.#opts.prefix }).catch((err: unknown) => {
          // not listening, silent or garbled: blamed like a failed stream (the caller reads those one by one)
          if (options.signal?.aborted !== true && !this.#closed) this.#blame(holder, batchFailureCode(err))
          return undefined
        })
        if (got === undefined) return
        if (got.corrupt > 0) {
          this.#penalties.blame(holder)
          this.holderFailures.INTEGRITY = (this.holderFailures.INTEGRITY ?? 0) + got.corrupt
        }
        await Promise.all(
          [...got.chunks].map(async ([hex, bytes]) => {
            const ref = wanted.get(hex)!
            if (bytes.length !== ref.size) return
            await this.store.commitFetchedChunk(ref, bytes)
            here.add(hex)
            options.fetched?.add(hex)
            if (options.sources) options.sources.peers[holder] = (options.sources.peers[holder] ?? 0) + bytes.length
          }),
        )
        this.#have(
          [...got.chunks.keys()].filter((h) => wanted.get(h)!.size === got.chunks.get(h)!.length),
          "blob",
        )
      },
      options.signal,
    )
    const rest: BlobRef[] = []
    for (const r of refs) if (!here.has(r.hex) && !(await this.store.hasBlob(r))) rest.push(r)
    return rest
  }

  /**
   * Stops folds, holder and receiver; the caller's connection stays open. Idempotent (every
   * call gets the same promise). Runs by itself when the connection closes first; prompt
   * then too: nothing waits on a dead connection.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    this.#unwatchConnection()
    this.#link.release()
    this.bus.dispose()
    try {
      // each part stops even when one before it failed; the first failure is rethrown
      let failed: { err: unknown } | undefined
      for (const stop of [() => this.batches.close(), () => this.receiver.close(), () => this.sender.close(), () => this.folds.close()]) {
        try {
          await stop()
        } catch (err) {
          failed ??= { err }
        }
      }
      if (failed) throw failed.err
    } finally {
      returnReceiveArena(this.#pool)
    }
  }
}

/** The code a failed batch request is counted under: ours, a nats.js timeout, or not listening. */
function batchFailureCode(err: unknown): string {
  if (err instanceof Error && err.name === "TimeoutError") return "TIMEOUT"
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === "string" && /^[A-Z_]+$/.test(code) ? code : "NO_HOLDER"
}

/** The list rotated left by `by` among its close candidates (spreads chunks over holders). */
function rotate(list: string[], by: number): string[] {
  const k = Math.min(list.length, 3)
  if (k <= 1) return list
  const r = by % k
  return [...list.slice(r, k), ...list.slice(0, r), ...list.slice(k)]
}
