/**
 * Requester side of the transfer subprotocol: fetches one chunk from named holders,
 * verifies it, and resumes from the last contiguous offset (same or another holder) after
 * a gap, an idle holder, a reconnect or a holder's death. Nothing unverified is returned.
 *
 * One {@link ChunkReceiver} per connection and prefix multiplexes every concurrent fetch
 * over ONE wildcard data subscription, held only while fetches are active.
 */
import type { Msg, NatsConnection, Status, Subscription } from "@nats-io/nats-core"
import { TRANSFER_MAX_CHUNK_BYTES } from "../storage/format/constants.ts"
import {
  AbortedError,
  ClosedError,
  type DatafortsError,
  IntegrityError,
  NoHolderError,
  ProtocolError,
  TimeoutError,
  TooLargeError,
} from "../storage/format/errors.ts"
import type { HashBackend, Hasher } from "../storage/format/hasher.ts"
import { fromHex, isHashHex, toHex } from "../storage/format/hex.ts"
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_PREFIX, DEFAULT_WINDOW_BYTES } from "./constants.ts"
import { FrameType, decodeHolderFrame, encodeCancel, encodeCredit, encodeReq, errorFromErr } from "./frames.ts"
import { attemptSubject, holderSubject, receiverWildcard } from "./subjects.ts"
import { denialOf, permissionError, refusesFetch } from "./nats-denials.ts"
import { CreditWindow, Reassembly } from "./window.ts"

export interface FetchChunkOptions {
  /** Lower-case hex BLAKE3 of the chunk. */
  readonly hash: string
  /** Holder node ids, in order of preference; a function is re-read whenever a holder is chosen. */
  readonly holders: readonly string[] | (() => readonly string[])
  readonly hashBackend: HashBackend
  /** When known (from the manifest), a holder claiming any other length is cut off. */
  readonly expectedLength?: number
  /** Subject prefix, default `dataforts` (must match the receiver's when given one). */
  readonly prefix?: string
  readonly signal?: AbortSignal
  /** A holder that sends nothing for this long is abandoned (default 5 s). */
  readonly idleTimeoutMs?: number
  /** Credit window in bytes (default 256 frames ≈ 2 MB). */
  readonly window?: number
  /** Upper bound on requests (all holders, resumes, retries); then NO_HOLDER. */
  readonly maxAttempts?: number
  /** Called as in-order bytes arrive, with the holder that sent them. */
  readonly onBytes?: (n: number, holder: string) => void
  /**
   * Supplies the buffer a chunk of `length` bytes is assembled in (≥ length). The caller owns
   * it: reusing buffers from a pool saves a fresh allocation and its page faults per chunk.
   * The returned `bytes` are then a view of it.
   */
  readonly into?: (length: number) => Uint8Array
  /** Called when a holder is abandoned or blamed (the plugin may feed this back to placement). */
  readonly onHolderFailure?: (holder: string, error: DatafortsError) => void
}

/** A verified chunk and where its bytes came from. */
export interface FetchReport {
  readonly bytes: Uint8Array
  /** Bytes accepted per holder over the whole fetch (including bytes later discarded). */
  readonly servedBy: ReadonlyMap<string, number>
  /** Holders abandoned or blamed, in order, with the typed reason. */
  readonly failures: ReadonlyArray<{ readonly holder: string; readonly error: DatafortsError }>
  /** Requests made (1 when the first holder served it in one go). */
  readonly attempts: number
}

/** Receiver counters for operators. */
export interface ReceiverStats {
  readonly activeFetches: number
  readonly fetchesCompleted: number
  readonly fetchesFailed: number
  readonly bytesReceived: number
  readonly framesReceived: number
  readonly resumes: number
  readonly integrityFailures: number
  /**
   * Of `resumes`, why the same holder was asked again after a connection fault: `reconnect`
   * (our connection came back: frames and credit sent meanwhile are gone), `stall` (the holder
   * went quiet: its frames or our credit were lost, e.g. its own connection dropped),
   * `notListening` (right after a reconnect the holder had not re-subscribed yet).
   */
  readonly faultResumes: { readonly reconnect: number; readonly stall: number; readonly notListening: number }
  /** Times this receiver saw its connection drop (nats.js `disconnect`) while fetching. */
  readonly disconnects: number
}

export interface ReceiverOptions {
  readonly prefix?: string
  /** How often idle holders are checked (default 100 ms). */
  readonly sweepMs?: number
  /**
   * The connection's outages as watched for the connection's whole life (the mesh's watcher):
   * the receiver's own status watcher runs only while fetches are active, so without this a
   * fetch started during an outage would not know the connection is down.
   */
  readonly link?: ConnectionState
}

/** Whether a connection is down, since when, and when it last came back. */
export interface ConnectionState {
  readonly down: boolean
  readonly downSince: number
  readonly reconnectedAt: number
}

/**
 * Fetches chunks over one connection. Concurrent fetches share one wildcard subscription
 * and one idle sweep timer, both released when no fetch is active.
 *
 * @example
 * const receiver = new ChunkReceiver(nc)
 * const { bytes, servedBy } = await receiver.fetch({ hash, holders: ["n1", "n2"], hashBackend })
 */
export class ChunkReceiver implements AsyncDisposable {
  readonly prefix: string
  readonly #nc: NatsConnection
  readonly #id = randomToken()
  readonly #sweepMs: number
  readonly #attempts = new Map<string, Fetch>()
  readonly #fetches = new Set<Fetch>()
  #attemptSeq = 0
  #sub: Subscription | undefined
  #status: { stop(): void } | undefined
  #sweep: ReturnType<typeof setInterval> | undefined
  #closed = false
  #completed = 0
  #failed = 0
  /** @internal counters bumped by fetches */
  bytesReceived = 0
  framesReceived = 0
  resumes = 0
  integrityFailures = 0
  readonly faultResumes = { reconnect: 0, stall: 0, notListening: 0 }
  disconnects = 0
  readonly #link: ConnectionState | undefined
  /** What our own status watcher saw (while fetches are active). */
  #offline = false
  #offlineSince = 0
  #reconnectedAt = Number.NEGATIVE_INFINITY

  constructor(nc: NatsConnection, options: ReceiverOptions = {}) {
    this.#nc = nc
    this.prefix = options.prefix ?? DEFAULT_PREFIX
    this.#sweepMs = options.sweepMs ?? 100
    this.#link = options.link
  }

  /** The connection is down (between nats.js `disconnect` and `reconnect`): nobody is to blame for silence. */
  get offline(): boolean {
    return this.#offline || this.#link?.down === true
  }

  get offlineSince(): number {
    return this.#link?.down === true ? this.#link.downSince : this.#offlineSince
  }

  /** When the connection last came back (holders may take a moment to re-subscribe). */
  get reconnectedAt(): number {
    return Math.max(this.#reconnectedAt, this.#link?.reconnectedAt ?? Number.NEGATIVE_INFINITY)
  }

  stats(): ReceiverStats {
    return {
      activeFetches: this.#fetches.size,
      fetchesCompleted: this.#completed,
      fetchesFailed: this.#failed,
      bytesReceived: this.bytesReceived,
      framesReceived: this.framesReceived,
      resumes: this.resumes,
      integrityFailures: this.integrityFailures,
      faultResumes: { ...this.faultResumes },
      disconnects: this.disconnects,
    }
  }

  /**
   * Fetches and verifies one chunk.
   * @throws {NoHolderError} every holder failed, was blamed, or the attempt budget ran out
   * @throws {AbortedError} the signal fired (the holder is told to stop)
   * @throws {ClosedError} the receiver was closed
   */
  fetch(options: FetchChunkOptions): Promise<FetchReport> {
    if (options.signal?.aborted) return Promise.reject(new AbortedError({ cause: options.signal.reason }))
    if (this.#closed) return Promise.reject(new ClosedError("receiver"))
    if (this.#nc.isClosed()) return Promise.reject(new ClosedError("connection"))
    if (!isHashHex(options.hash)) return Promise.reject(new ProtocolError(`not a hash: ${options.hash}`))
    if (options.prefix !== undefined && options.prefix !== this.prefix) {
      return Promise.reject(new ProtocolError(`prefix ${options.prefix} differs from the receiver's ${this.prefix}`))
    }
    return new Promise<FetchReport>((resolve, reject) => {
      const f = new Fetch(this, options, resolve, reject)
      this.#fetches.add(f)
      this.#acquire()
      f.start()
    })
  }

  /** Rejects every active fetch with ClosedError and releases the subscription. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#failAll(new ClosedError("receiver"))
  }

  #failAll(error: ClosedError): void {
    for (const f of [...this.#fetches]) f.fail(error)
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  // ---- used by Fetch ----

  /** Registers a new attempt subject for `f`. */
  openAttempt(f: Fetch): string {
    const subject = attemptSubject(this.prefix, this.#id, ++this.#attemptSeq)
    this.#attempts.set(subject, f)
    return subject
  }

  closeAttempt(subject: string): void {
    this.#attempts.delete(subject)
  }

  publish(subject: string, bytes: Uint8Array, reply?: string): void {
    this.#nc.publish(subject, bytes, reply === undefined ? undefined : { reply })
  }

  done(f: Fetch, ok: boolean): void {
    if (!this.#fetches.delete(f)) return
    if (ok) this.#completed++
    else this.#failed++
    if (this.#fetches.size === 0) this.#releaseShared()
  }

  holderSubject(node: string): string {
    return holderSubject(this.prefix, node)
  }

  // ---- shared subscription, status watcher and sweep: held while fetches are active ----

  #acquire(): void {
    if (this.#sub !== undefined) return
    this.#sub = this.#nc.subscribe(receiverWildcard(this.prefix, this.#id), {
      callback: (err, msg) => {
        if (err === null) this.#onMessage(msg)
      },
    })
    // nats.js returns a QueuedIterator: stop() ends the loop below
    const status = this.#nc.status() as AsyncIterable<Status> & { stop(): void }
    this.#status = status
    void (async () => {
      try {
        for await (const s of status) {
          // while the connection is down nothing can arrive: the idle sweep blames no holder
          if (s.type === "disconnect" && !this.#offline) {
            this.#offline = true
            this.#offlineSince = Date.now()
            this.disconnects++
          }
          // nats.js resubscribes silently and frames sent meanwhile are gone (it even drops
          // what was published while disconnected): resume now
          if (s.type === "reconnect") {
            this.#offline = false
            this.#reconnectedAt = Date.now()
            for (const f of [...this.#fetches]) f.onReconnect()
          }
          // the server refused our data subscription or a REQ/CREDIT to a holder: nothing
          // would ever arrive, so fail now with PERMISSION instead of after idle timeouts
          const denied = denialOf(s)
          if (denied !== undefined && refusesFetch(denied, this.prefix, receiverWildcard(this.prefix, this.#id))) {
            for (const f of [...this.#fetches]) f.fail(permissionError(denied))
          }
          // the connection is gone for good: no frame will come, fail now (not after the idle timeout)
          if (s.type === "close") break
        }
      } catch {
        // iterator stopped
      }
      // still ours: the connection ended it (closed, drained, reconnecting given up), not #releaseShared
      if (this.#status === status) this.#failAll(new ClosedError("connection"))
    })()
    this.#sweep = setInterval(() => {
      const now = Date.now()
      for (const f of [...this.#fetches]) f.checkIdle(now)
    }, this.#sweepMs)
    this.#sweep.unref?.()
  }

  #releaseShared(): void {
    try {
      this.#sub?.unsubscribe()
    } catch {
      // connection closed
    }
    this.#sub = undefined
    this.#status?.stop()
    this.#status = undefined
    if (this.#sweep !== undefined) clearInterval(this.#sweep)
    this.#sweep = undefined
    // unobserved from now on: assume up unless `link` says otherwise
    this.#offline = false
  }

  #onMessage(msg: Msg): void {
    const f = this.#attempts.get(msg.subject)
    if (f === undefined) return // a stale attempt's frame: dropped
    f.onMessage(msg)
  }
}

/** A fetch whose connection stays down this long gives up on its holder (TIMEOUT, then NO_HOLDER). */
const OUTAGE_MAX_MS = 30_000
/** First delay before asking again a holder that was not listening just after a reconnect (doubles, ≤ 1 s). */
const NOT_LISTENING_RETRY_MS = 100

const receivers = new WeakMap<NatsConnection, Map<string, ChunkReceiver>>()

/** The shared receiver of `nc` for `prefix` (created on first use, lives as long as `nc`). */
export function receiverFor(nc: NatsConnection, prefix = DEFAULT_PREFIX): ChunkReceiver {
  let byPrefix = receivers.get(nc)
  if (byPrefix === undefined) receivers.set(nc, (byPrefix = new Map()))
  let r = byPrefix.get(prefix)
  if (r === undefined) byPrefix.set(prefix, (r = new ChunkReceiver(nc, { prefix })))
  return r
}

/**
 * Fetches one chunk from `holders` over `nc` and returns exactly its verified bytes.
 * Uses the connection's shared {@link ChunkReceiver}.
 *
 * @example
 * const bytes = await fetchChunk(nc, { hash, holders: ["n1"], hashBackend: await defaultHashBackend() })
 */
export async function fetchChunk(nc: NatsConnection, options: FetchChunkOptions): Promise<Uint8Array> {
  return (await fetchChunkReport(nc, options)).bytes
}

/** {@link fetchChunk} with where the bytes came from and which holders failed. */
export function fetchChunkReport(nc: NatsConnection, options: FetchChunkOptions): Promise<FetchReport> {
  return receiverFor(nc, options.prefix ?? DEFAULT_PREFIX).fetch(options)
}

/** In-order bytes a holder must add per idle-timeout window (see `Fetch.#checkProgress`). */
const MIN_PROGRESS_BYTES = 64 * 1024

/** State of one fetch: a sequence of attempts, each one REQ to one holder. */
class Fetch {
  readonly #r: ChunkReceiver
  readonly #o: FetchChunkOptions
  readonly #hash: Uint8Array
  readonly #limit: number
  readonly #window: number
  readonly #idleMs: number
  readonly #maxAttempts: number
  readonly #resolve: (r: FetchReport) => void
  readonly #reject: (e: unknown) => void
  readonly #servedBy = new Map<string, number>()
  readonly #failures: { holder: string; error: DatafortsError }[] = []
  /** Holders abandoned for this fetch (idle, dead, ERR, lying, blamed). */
  readonly #excluded = new Set<string>()
  /** Holders whose bytes are in the current buffer (blamed together on an integrity failure). */
  readonly #contributors = new Set<string>()
  #buf: Reassembly | undefined
  #hasher: Hasher | undefined
  #hashed = 0
  #credit: CreditWindow | undefined
  #holder: string | undefined
  #subject: string | undefined
  #headSeen = false
  /** When the current holder was last seen sending (checked by the idle sweep). */
  #lastFrameAt = 0
  /** Messages so far; the sweep compares it with its last look (no clock read per frame). */
  #messages = 0
  #messagesAtSweep = 0
  /** Bytes the current attempt's holder had accepted, not yet added to `#servedBy`. */
  #attemptBytes = 0
  #attempts = 0
  /** Consecutive re-requests to the same holder that made no progress. */
  #strikes = 0
  #progressAt = -1
  /** Start of the current progress window of this holder, and our in-order offset then. */
  #floorAt = 0
  #floorOffset = 0
  #done = false
  #onAbort: (() => void) | undefined
  /** The current holder went quiet and was asked again once (a lost credit or lost frames). */
  #nudged = false
  /** Re-asks of a holder not listening yet after a reconnect (backoff), and the pending one. */
  #notListening = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined

  constructor(r: ChunkReceiver, o: FetchChunkOptions, resolve: (r: FetchReport) => void, reject: (e: unknown) => void) {
    this.#r = r
    this.#o = o
    this.#hash = fromHex(o.hash)!
    this.#limit = Math.min(TRANSFER_MAX_CHUNK_BYTES, o.expectedLength ?? TRANSFER_MAX_CHUNK_BYTES)
    this.#window = Math.max(1, o.window ?? DEFAULT_WINDOW_BYTES)
    this.#idleMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    this.#maxAttempts = o.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
    this.#resolve = resolve
    this.#reject = reject
  }

  start(): void {
    const signal = this.#o.signal
    if (signal !== undefined) {
      this.#onAbort = () => this.fail(new AbortedError({ cause: signal.reason }))
      signal.addEventListener("abort", this.#onAbort, { once: true })
    }
    if (this.#o.expectedLength !== undefined && this.#o.expectedLength > TRANSFER_MAX_CHUNK_BYTES) {
      this.fail(new TooLargeError("chunk", this.#o.expectedLength, TRANSFER_MAX_CHUNK_BYTES))
      return
    }
    this.#next()
  }

  get #offset(): number {
    return this.#buf?.contiguous ?? 0
  }

  /** Requests from the current holder again if it is still usable, else from the next. */
  #next(sameHolder = false): void {
    if (this.#done) return
    let holder: string | undefined
    if (sameHolder && this.#holder !== undefined && !this.#excluded.has(this.#holder)) holder = this.#holder
    else {
      const list = typeof this.#o.holders === "function" ? this.#o.holders() : this.#o.holders
      holder = list.find((h) => !this.#excluded.has(h))
    }
    if (holder === undefined) {
      const why = this.#failures.map((f) => `${f.holder}: ${f.error.code}`).join(", ")
      this.fail(new NoHolderError(this.#o.hash, why || "no holders named"))
      return
    }
    if (this.#attempts >= this.#maxAttempts) {
      this.fail(new NoHolderError(this.#o.hash, `gave up after ${this.#attempts} requests`))
      return
    }
    this.#request(holder)
  }

  #request(holder: string): void {
    this.#endAttempt(true)
    if (this.#attempts > 0) this.#r.resumes++
    this.#attempts++
    const offset = this.#offset
    if (this.#holder === holder && this.#progressAt === offset) this.#strikes++
    else this.#strikes = 0
    if (this.#holder !== holder) {
      this.#nudged = false
      this.#notListening = 0
      this.#floorAt = Date.now()
      this.#floorOffset = offset
    }
    this.#progressAt = offset
    this.#holder = holder
    this.#subject = this.#r.openAttempt(this)
    this.#credit = new CreditWindow(this.#window, offset)
    this.#headSeen = false
    this.#lastFrameAt = Date.now()
    try {
      this.#r.publish(this.#r.holderSubject(holder), encodeReq(this.#hash, offset, this.#credit.granted, this.#limit), this.#subject)
    } catch (err) {
      this.fail(new ClosedError(`connection (${(err as Error).message})`))
    }
  }

  /** Forgets the current attempt; `cancel` tells its holder to stop. */
  #endAttempt(cancel: boolean): void {
    const subject = this.#subject
    if (subject === undefined) return
    this.#countServed()
    this.#subject = undefined
    this.#r.closeAttempt(subject)
    if (cancel && this.#holder !== undefined) {
      try {
        this.#r.publish(this.#r.holderSubject(this.#holder), encodeCancel(subject))
      } catch {
        // connection closed: the holder's idle drop releases it
      }
    }
  }

  /** Adds the current attempt's accepted bytes to its holder's total. */
  #countServed(): void {
    if (this.#attemptBytes === 0) return
    const holder = this.#holder!
    this.#servedBy.set(holder, (this.#servedBy.get(holder) ?? 0) + this.#attemptBytes)
    this.#attemptBytes = 0
  }

  /** Abandons the current holder for this fetch and moves on. */
  #abandon(error: DatafortsError): void {
    const holder = this.#holder!
    this.#failures.push({ holder, error })
    this.#excluded.add(holder)
    this.#o.onHolderFailure?.(holder, error)
    this.#endAttempt(true)
    this.#next()
  }

  /** Frames were lost (gap, reconnect): re-request from the same holder, a few times. */
  #rerequest(): void {
    if (this.#strikes >= 3) {
      this.#abandon(new TimeoutError(`holder ${this.#holder} keeps losing frames at offset ${this.#offset}`))
      return
    }
    this.#next(true)
  }

  /** The connection came back: what the holder sent and the credit we granted meanwhile are gone. */
  onReconnect(): void {
    if (this.#done || this.#subject === undefined) return // none open, or a re-ask is already scheduled
    this.#r.faultResumes.reconnect++
    this.#nudged = false
    this.#restartClocks(Date.now())
    this.#next(true)
  }

  /** An outage is nobody's silence nor trickle: the idle and progress windows start again. */
  #restartClocks(now: number): void {
    this.#lastFrameAt = now
    this.#floorAt = now
    this.#floorOffset = this.#offset
  }

  checkIdle(now: number): void {
    if (this.#done || this.#subject === undefined) return
    if (this.#messages !== this.#messagesAtSweep) {
      this.#messagesAtSweep = this.#messages
      this.#lastFrameAt = now
      this.#nudged = false
      this.#checkProgress(now)
      return
    }
    if (this.#r.offline) {
      // our own connection is down: the holder is not to blame, unless the outage lasts
      if (now - this.#r.offlineSince > OUTAGE_MAX_MS) this.#abandon(new TimeoutError(`the connection has been down for ${OUTAGE_MAX_MS} ms`))
      else this.#restartClocks(now)
      return
    }
    const silent = now - this.#lastFrameAt
    if (silent > this.#idleMs) {
      this.#abandon(new TimeoutError(`holder ${this.#holder} silent for ${this.#idleMs} ms at offset ${this.#offset}`))
    } else if (!this.#nudged && silent > this.#idleMs / 2) {
      // quiet for half the idle timeout: its frames or our credit may have been lost (its
      // connection dropped and came back; a slow consumer was cut off): ask once more from
      // where we are, with fresh credit, before blaming it; the idle clock keeps running
      this.#nudged = true
      this.#r.faultResumes.stall++
      const since = this.#lastFrameAt
      this.#next(true)
      this.#lastFrameAt = since
    }
  }

  /**
   * A holder that keeps sending but hardly moves (one byte a second: never idle, never done)
   * is as stuck as a silent one: each idle-timeout window it must add `MIN_PROGRESS_BYTES`
   * to what we have in order (≈ 13 KB/s at the default 5 s, far below any real link), or it
   * is abandoned. A trickling liar then costs a chunk at most length / 64 KiB windows.
   */
  #checkProgress(now: number): void {
    if (now - this.#floorAt < this.#idleMs) return
    if (this.#headSeen && this.#offset - this.#floorOffset < MIN_PROGRESS_BYTES) {
      this.#abandon(new TimeoutError(`holder ${this.#holder} sent under ${MIN_PROGRESS_BYTES} bytes in ${this.#idleMs} ms at offset ${this.#offset}`))
      return
    }
    this.#floorAt = now
    this.#floorOffset = this.#offset
  }

  /** A no-responders answer: the holder does not subscribe (dead, gone, or not back yet). */
  #onNotListening(): void {
    const holder = this.#holder!
    if (Date.now() - this.#r.reconnectedAt < this.#idleMs && this.#notListening < 8) {
      // just after our reconnect the holder's connection may be coming back too (its
      // subscription not yet re-sent or not yet routed to our server): ask it again shortly
      this.#r.faultResumes.notListening++
      this.#endAttempt(false)
      const delay = Math.min(1000, NOT_LISTENING_RETRY_MS << this.#notListening++)
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined
        this.#next(true)
      }, delay)
      this.#retryTimer.unref?.()
      return
    }
    // a holder that went quiet and is now gone timed out (the same code as staying quiet)
    this.#abandon(this.#nudged ? new TimeoutError(`holder ${holder} went silent at offset ${this.#offset} and stopped listening`) : new NoHolderError(this.#o.hash, `${holder} is not listening`))
  }

  onMessage(msg: Msg): void {
    if (this.#done) return
    const data = msg.data
    this.#messages++
    if (data.length === 0 && msg.headers?.code === 503) {
      // no responders: nobody subscribes to that holder's subject (dead or never there)
      this.#onNotListening()
      return
    }
    // hot path: DATA without allocating a frame object
    if (data.length >= 6 && data[0] === 1 && data[1] === FrameType.DATA) {
      this.#onData(((data[2]! << 24) | (data[3]! << 16) | (data[4]! << 8) | data[5]!) >>> 0, data)
      return
    }
    let frame
    try {
      frame = decodeHolderFrame(data)
    } catch (err) {
      this.#abandon(err as DatafortsError)
      return
    }
    switch (frame.type) {
      case "data":
        return this.#onData(frame.offset, data) // unreachable (hot path), kept for exhaustiveness
      case "head":
        return this.#onHead(frame.length)
      case "fin":
        return this.#onFin(frame.length, frame.hash)
      case "err":
        return this.#abandon(errorFromErr(frame.code, frame.message, this.#hash, this.#holder!))
    }
  }

  #onHead(length: number): void {
    if (length > TRANSFER_MAX_CHUNK_BYTES) {
      this.#abandon(new TooLargeError(`chunk claimed by ${this.#holder}`, length, TRANSFER_MAX_CHUNK_BYTES))
      return
    }
    if (this.#o.expectedLength !== undefined && length !== this.#o.expectedLength) {
      this.#abandon(
        length > this.#o.expectedLength
          ? new TooLargeError(`chunk claimed by ${this.#holder}`, length, this.#o.expectedLength)
          : new ProtocolError(`${this.#holder} claims ${length} bytes, expected ${this.#o.expectedLength}`),
      )
      return
    }
    if (this.#buf === undefined || (this.#buf.length !== length && this.#buf.contiguous === 0)) {
      this.#reset(length)
    } else if (this.#buf.length !== length) {
      // holders disagree on the length; the hash decides, so start over with this one
      this.#reset(length)
      this.#headSeen = false
      this.#next(true)
      return
    }
    this.#headSeen = true
  }

  #reset(length: number): void {
    this.#buf = new Reassembly(length, this.#o.into?.(length))
    this.#hasher = this.#o.hashBackend.create()
    this.#hashed = 0
    this.#contributors.clear()
  }

  #onData(offset: number, frame: Uint8Array): void {
    const buf = this.#buf
    if (!this.#headSeen || buf === undefined) {
      this.#abandon(new ProtocolError(`${this.#holder} sent DATA before HEAD`))
      return
    }
    const payload = frame.subarray(6)
    const end = offset + payload.length
    if (end > buf.length) {
      this.#abandon(new TooLargeError(`data from ${this.#holder}`, end, buf.length))
      return
    }
    if (!this.#credit!.allows(end)) {
      this.#abandon(new ProtocolError(`${this.#holder} sent past its credit (${end} > ${this.#credit!.granted})`))
      return
    }
    const result = buf.accept(offset, payload)
    if (result === "ok") {
      const n = payload.length
      // per-holder accounting once per attempt, not per frame
      if (this.#attemptBytes === 0) this.#contributors.add(this.#holder!)
      this.#attemptBytes += n
      this.#r.bytesReceived += n
      this.#r.framesReceived++
      this.#o.onBytes?.(n, this.#holder!)
      const contiguous = buf.contiguous
      // hash in ≥ 1 MiB steps: the prefix below `contiguous` never changes again
      if (contiguous - this.#hashed >= 1 << 20) {
        this.#hasher!.update(buf.bytes.subarray(this.#hashed, contiguous))
        this.#hashed = contiguous
      }
      const grant = this.#credit!.consumed(contiguous)
      if (grant !== undefined) {
        try {
          this.#r.publish(this.#r.holderSubject(this.#holder!), encodeCredit(grant, this.#subject!))
        } catch {
          // connection closed: idle sweep moves on
        }
      }
    } else if (result === "gap") {
      this.#rerequest()
    } else if (result === "invalid") {
      this.#abandon(new ProtocolError(`${this.#holder} sent overlapping data at ${offset}`))
    }
    // "dup": a resend below what we have; ignore
  }

  #onFin(length: number, hashEcho: Uint8Array): void {
    const buf = this.#buf
    if (!this.#headSeen || buf === undefined || length !== buf.length) {
      this.#abandon(new ProtocolError(`${this.#holder} sent a FIN for ${length} bytes that does not match its HEAD`))
      return
    }
    if (toHex(hashEcho) !== this.#o.hash) {
      this.#abandon(new ProtocolError(`${this.#holder} echoed the wrong hash`))
      return
    }
    if (!buf.complete) {
      this.#rerequest() // FIN overtook lost frames
      return
    }
    this.#endAttempt(false) // the holder released the transfer when it sent FIN
    if (this.#hashed < buf.length) this.#hasher!.update(buf.bytes.subarray(this.#hashed))
    const actual = toHex(this.#hasher!.digest())
    if (actual === this.#o.hash) {
      this.#succeed(buf.bytes)
      return
    }
    // blame everyone whose bytes are in the buffer and start over from 0 elsewhere
    this.#r.integrityFailures++
    const error = new IntegrityError(this.#o.hash, actual, `bytes from ${[...this.#contributors].join(", ")}`)
    for (const holder of this.#contributors) {
      this.#failures.push({ holder, error })
      this.#excluded.add(holder)
      this.#o.onHolderFailure?.(holder, error)
    }
    this.#buf = undefined
    this.#hasher = undefined
    this.#hashed = 0
    this.#contributors.clear()
    this.#next()
  }

  #succeed(bytes: Uint8Array): void {
    this.#cleanup(true)
    this.#resolve({ bytes, servedBy: this.#servedBy, failures: this.#failures, attempts: this.#attempts })
  }

  /** Ends the fetch with `error`, telling the current holder to stop. */
  fail(error: DatafortsError): void {
    if (this.#done) return
    this.#cleanup(false)
    this.#reject(error)
  }

  #cleanup(ok: boolean): void {
    this.#done = true
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#endAttempt(!ok)
    if (this.#onAbort !== undefined) this.#o.signal?.removeEventListener("abort", this.#onAbort)
    this.#buf = undefined
    this.#r.done(this, ok)
  }
}

function randomToken(): string {
  return globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 16)
}
