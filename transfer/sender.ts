/**
 * Holder side of the transfer subprotocol: serves REQs on `<prefix>.xfer.<node>` from a
 * {@link ChunkSource}, one credit-limited stream of DATA frames per request, all streams
 * sharing the link through ONE deficit-round-robin scheduler. Plain async code: no
 * Effect per frame (STYLE D7).
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core"
import { TRANSFER_MAX_CHUNK_BYTES } from "../storage/format/constants.ts"
import { ProtocolError, StorageError, TooLargeError } from "../storage/format/errors.ts"
import { toHex } from "../storage/format/hex.ts"
import {
  DATA_HEADER_BYTES,
  DATA_MAX_PAYLOAD,
  DEFAULT_MAX_ACTIVE_TRANSFERS,
  DEFAULT_PREFIX,
  DEFAULT_QUANTUM_BYTES,
  BUSY_READ_WINDOW_BYTES,
  DEFAULT_READ_WINDOW_BYTES,
  DEFAULT_SENDER_IDLE_DROP_MS,
  SENDER_FEW_TRANSFERS,
  SENDER_SOCKET_HIGH_WATER,
  SENDER_PING_BYTES,
  SENDER_SHARED_MS,
  SENDER_UNANSWERED_PINGS_ALONE,
  SENDER_MAX_READS_AHEAD,
  SENDER_UNANSWERED_PINGS,
  SENDER_YIELD_BYTES,
} from "./constants.ts"
import { ErrCode, decodeControl, encodeDataFrom, encodeErr, encodeFin, encodeHead, errCodeOf } from "./frames.ts"
import { outboundEmpty, socketDrained, writeRecords } from "./nats-wire.ts"
import { ReadAheadGate } from "./read-ahead-gate.ts"
import { ServerPace } from "./server-pace.ts"
import { DeficitRoundRobin } from "./scheduler.ts"
import { SlabPool } from "./slab-pool.ts"
import { holderSubject, readerOfAttempt } from "./subjects.ts"
import { SendCredit } from "./window.ts"
import { isWireSubject, layoutWireSlab, WIRE_SUBJECT_MAX, wireSlabBytes } from "./wire-slab.ts"

/** Random access to one chunk's bytes; the holder reads it in bounded windows. */
export interface ChunkReader {
  readonly length: number
  /** Exactly `min(length, this.length - offset)` bytes at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array>
  /** Fills `targets` in order from `offset` on; returns the bytes read (short only at the end). */
  readInto(offset: number, targets: readonly Uint8Array[]): Promise<number>
  close(): Promise<void>
}

/** The port through which the sender reads the local store. */
export interface ChunkSource {
  /** A reader for the chunk, or undefined when this node does not hold it. */
  open(hashHex: string): Promise<ChunkReader | undefined>
}

export interface SenderOptions {
  /** This node's id: requests arrive on `<prefix>.xfer.<node>`. */
  readonly node: string
  readonly source: ChunkSource
  /** Subject prefix, default `dataforts`. */
  readonly prefix?: string
  /** Bytes read from the source at a time; two windows at most per transfer. */
  readonly readWindowBytes?: number
  /** DRR quantum in payload bytes (≥ one frame). */
  readonly quantumBytes?: number
  /** Drop a transfer that received no credit for this long. */
  readonly idleDropMs?: number
  /** More concurrent transfers than this are refused with ERR BUSY. */
  readonly maxActiveTransfers?: number
}

/** Plain counters for operators (the plugin exports them as metrics). */
export interface SenderStats {
  readonly activeTransfers: number
  readonly transfersStarted: number
  readonly transfersCompleted: number
  /** Cancelled by the receiver, idle-dropped, failed, or closed with the sender. */
  readonly transfersDropped: number
  readonly bytesServed: number
  readonly framesSent: number
  /**
   * Of `framesSent`, those written to the socket as runs of PUB records (the fast path); the
   * rest were published one by one (partial frames, reconnecting, nats.js internals changed).
   */
  readonly framesWrittenDirect: number
  readonly errorsSent: number
  /**
   * Times the holder paused because its NATS server had not yet taken what it wrote (more
   * than ~0.75 MiB while several readers wait on it, ~2 MiB with one; transfer/server-pace.ts),
   * and the seconds it paused in all: a busy or slow server, or a slow link to it.
   */
  readonly serverWaits: number
  readonly serverWaitSeconds: number
}

/** A running holder; `close()` stops serving and releases every transfer. */
export interface Sender extends AsyncDisposable {
  readonly subject: string
  stats(): SenderStats
  close(): Promise<void>
}

const utf8 = new TextEncoder()

/** One read window, already laid out as PUB records of DATA frames (see wire-slab.ts). */
interface Window {
  readonly start: number
  readonly length: number
  /** The buffer the records live in (pooled when of a pool's size; retired once sent). */
  readonly slab: Uint8Array
  readonly recordStarts: Int32Array
  readonly frameStarts: Int32Array
}

/** One active outgoing transfer, keyed by its data subject. */
interface OutTransfer {
  readonly subject: string
  /** `subject` in UTF-8, as PUB records carry it. */
  readonly subjectBytes: Uint8Array
  readonly hash: Uint8Array
  reader: ChunkReader | undefined
  length: number
  /** Next offset to send. */
  next: number
  /** Next offset to read from the source. */
  readAt: number
  readonly credit: SendCredit
  readonly windows: Window[]
  reading: Promise<void> | undefined
  lastCreditAt: number
  closed: boolean
}

/**
 * Starts serving chunks from `source`. Synchronous: the subscription is registered before
 * it returns (call `nc.flush()` if a peer must see it at once).
 *
 * @example
 * const sender = startSender(nc, { node: "n1", source })
 * // … later
 * await sender.close()
 */
export function startSender(nc: NatsConnection, options: SenderOptions): Sender {
  return new ChunkSender(nc, options)
}

class ChunkSender implements Sender {
  readonly subject: string
  readonly #nc: NatsConnection
  readonly #source: ChunkSource
  /** Read window while few transfers are active, and while many are (both whole frames). */
  readonly #readWindow: number
  readonly #busyReadWindow: number
  readonly #idleDropMs: number
  readonly #maxActive: number
  readonly #sub: Subscription
  readonly #transfers = new Map<string, OutTransfer>()
  readonly #drr: DeficitRoundRobin<OutTransfer>
  readonly #releasing = new Set<Promise<void>>()
  readonly #slabs: SlabPool
  readonly #busySlabs: SlabPool
  #sweep: ReturnType<typeof setInterval> | undefined
  #pumping = false
  #wake: (() => void) | undefined
  #closed: Promise<void> | undefined
  readonly #pace: ServerPace
  readonly #readsAhead = new ReadAheadGate<OutTransfer>(SENDER_MAX_READS_AHEAD)
  /** When each reader (its attempt subjects' stem) last asked for a chunk. */
  readonly #readers = new Map<string, number>()

  #started = 0
  #completed = 0
  #dropped = 0
  #bytes = 0
  #frames = 0
  #framesDirect = 0
  #errors = 0

  constructor(nc: NatsConnection, o: SenderOptions) {
    this.#nc = nc
    this.#source = o.source
    this.subject = holderSubject(o.prefix ?? DEFAULT_PREFIX, o.node)
    // read windows are whole frames, so frames never straddle two reads
    this.#readWindow = Math.max(1, Math.round((o.readWindowBytes ?? DEFAULT_READ_WINDOW_BYTES) / DATA_MAX_PAYLOAD)) * DATA_MAX_PAYLOAD
    this.#idleDropMs = o.idleDropMs ?? DEFAULT_SENDER_IDLE_DROP_MS
    this.#maxActive = o.maxActiveTransfers ?? DEFAULT_MAX_ACTIVE_TRANSFERS
    this.#busyReadWindow = Math.min(this.#readWindow, BUSY_READ_WINDOW_BYTES)
    // two windows per transfer are in flight; keep enough for the few, and for a few dozen busy transfers
    this.#slabs = new SlabPool(wireSlabBytes(this.#readWindow / DATA_MAX_PAYLOAD, WIRE_SUBJECT_MAX), 2 * SENDER_FEW_TRANSFERS)
    this.#busySlabs = new SlabPool(wireSlabBytes(this.#busyReadWindow / DATA_MAX_PAYLOAD, WIRE_SUBJECT_MAX), 64)
    this.#pace = new ServerPace(() => nc.flush(), SENDER_PING_BYTES, () => (this.#shared() ? SENDER_UNANSWERED_PINGS : SENDER_UNANSWERED_PINGS_ALONE))
    this.#drr = new DeficitRoundRobin(Math.max(DATA_MAX_PAYLOAD, o.quantumBytes ?? DEFAULT_QUANTUM_BYTES))
    this.#sub = nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err === null) this.#onControl(msg)
      },
    })
    // requests and credit come only on this subscription: once it ends (the connection
    // closed or drained, or close() unsubscribed) the holder stops and drops every transfer
    void this.#sub.closed.then(
      () => this.close(),
      () => this.close(),
    )
  }

  stats(): SenderStats {
    return {
      activeTransfers: this.#transfers.size,
      transfersStarted: this.#started,
      transfersCompleted: this.#completed,
      transfersDropped: this.#dropped,
      bytesServed: this.#bytes,
      framesSent: this.#frames,
      framesWrittenDirect: this.#framesDirect,
      serverWaits: this.#pace.waits,
      serverWaitSeconds: this.#pace.waitMs / 1000,
      errorsSent: this.#errors,
    }
  }

  close(): Promise<void> {
    this.#closed ??= this.#doClose()
    return this.#closed
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #doClose(): Promise<void> {
    try {
      this.#sub.unsubscribe()
    } catch {
      // connection already closed
    }
    for (const t of [...this.#transfers.values()]) {
      this.#sendErr(t.subject, ErrCode.CLOSED, "holder is shutting down")
      this.#release(t, "dropped")
    }
    this.#wake?.()
    this.#pace.stop()
    await Promise.allSettled([...this.#releasing])
  }

  #publish(subject: string, bytes: Uint8Array): boolean {
    try {
      this.#nc.publish(subject, bytes)
      return true
    } catch {
      return false // connection closed or draining: the idle drop cleans up
    }
  }

  #sendErr(subject: string, code: number, message: string): void {
    this.#errors++
    this.#publish(subject, encodeErr(code, message))
  }

  #onControl(msg: Msg): void {
    if (this.#closed) return
    let m
    try {
      m = decodeControl(msg.data)
    } catch (err) {
      if (msg.reply) this.#sendErr(msg.reply, ErrCode.PROTOCOL, (err as Error).message)
      return
    }
    if (m.type === "req") {
      if (!msg.reply) return // nowhere to answer
      this.#onRequest(msg.reply, m.hash, m.offset, m.credit, m.maxLength)
    } else if (m.type === "credit") {
      const t = this.#transfers.get(m.subject)
      if (t === undefined) return
      t.lastCreditAt = Date.now()
      if (t.credit.update(m.credit)) this.#kick()
    } else {
      const t = this.#transfers.get(m.subject)
      if (t !== undefined) this.#release(t, "dropped")
    }
  }

  #onRequest(subject: string, hash: Uint8Array, offset: number, credit: number, maxLength: number): void {
    const subjectBytes = utf8.encode(subject)
    if (!isWireSubject(subjectBytes)) return // a server never delivers such a reply subject
    const previous = this.#transfers.get(subject)
    if (previous !== undefined) this.#release(previous, "dropped")
    if (this.#transfers.size >= this.#maxActive) {
      this.#sendErr(subject, ErrCode.BUSY, `holder serves ${this.#transfers.size} transfers`)
      return
    }
    this.#readers.set(readerOfAttempt(subject), Date.now())
    const t: OutTransfer = {
      subject,
      subjectBytes,
      hash,
      reader: undefined,
      length: 0,
      next: offset,
      readAt: offset,
      credit: new SendCredit(credit),
      windows: [],
      reading: undefined,
      lastCreditAt: Date.now(),
      closed: false,
    }
    this.#transfers.set(subject, t)
    this.#started++
    this.#armSweep()
    void this.#open(t, maxLength)
  }

  async #open(t: OutTransfer, maxLength: number): Promise<void> {
    let reader: ChunkReader | undefined
    try {
      reader = await this.#source.open(toHex(t.hash))
    } catch (err) {
      if (!t.closed) this.#fail(t, new StorageError("open", { cause: err }))
      return
    }
    if (t.closed) {
      await reader?.close().catch(() => {})
      return
    }
    if (reader === undefined) {
      this.#sendErr(t.subject, ErrCode.NOT_FOUND, "not held here")
      this.#release(t, "dropped")
      return
    }
    t.reader = reader
    t.length = reader.length
    if (t.length > TRANSFER_MAX_CHUNK_BYTES || t.length > maxLength) {
      this.#fail(t, new TooLargeError("chunk", t.length, Math.min(maxLength, TRANSFER_MAX_CHUNK_BYTES)))
      return
    }
    if (t.next > t.length) {
      this.#fail(t, new ProtocolError(`offset ${t.next} beyond length ${t.length}`))
      return
    }
    this.#publish(t.subject, encodeHead(t.length))
    if (t.next === t.length) {
      this.#finish(t)
      return
    }
    this.#fill(t)
    this.#drr.add(t)
    this.#kick()
  }

  #fail(t: OutTransfer, err: unknown): void {
    this.#sendErr(t.subject, errCodeOf(err), err instanceof Error ? err.message : String(err))
    this.#release(t, "dropped")
  }

  #finish(t: OutTransfer): void {
    this.#publish(t.subject, encodeFin(t.length, t.hash))
    this.#release(t, "completed")
  }

  /** Frees everything the transfer holds; the reader closes after any in-flight read. */
  #release(t: OutTransfer, outcome: "completed" | "dropped"): void {
    if (t.closed) return
    t.closed = true
    if (outcome === "completed") this.#completed++
    else this.#dropped++
    this.#transfers.delete(t.subject)
    this.#drr.remove(t)
    for (const w of t.windows) this.#retire(w.slab)
    t.windows.length = 0
    const reader = t.reader
    if (reader !== undefined) {
      const p = Promise.resolve(t.reading)
        .catch(() => {})
        .then(() => reader.close())
        .catch(() => {})
        .finally(() => this.#releasing.delete(p))
      this.#releasing.add(p)
    }
    if (this.#transfers.size === 0 && this.#sweep !== undefined) {
      clearInterval(this.#sweep)
      this.#sweep = undefined
    }
  }

  /** Keeps up to two read windows ahead of `next`, within the chunk. */
  #fill(t: OutTransfer): void {
    if (t.reading !== undefined || t.closed || t.windows.length >= 2 || t.readAt >= t.length) return
    const reader = t.reader!
    const start = t.readAt
    const few = this.#transfers.size <= SENDER_FEW_TRANSFERS
    const len = Math.min(few ? this.#readWindow : this.#busyReadWindow, t.length - start)
    // a read ahead of what is already buffered waits its turn when the thread pool is busy
    // with others, so a small transfer's open and read find a free thread
    const ahead = t.windows.length > 0
    if (ahead && !this.#readsAhead.tryStart(t)) return
    t.readAt = start + len
    // the source reads straight into the frames' payload slots (no copy) of a pooled slab
    this.#recycle()
    const pooled = t.subjectBytes.length <= WIRE_SUBJECT_MAX ? (few ? this.#slabs : this.#busySlabs).take() : undefined
    const { slab, payloads, recordStarts, frameStarts } = layoutWireSlab(t.subjectBytes, start, len, pooled)
    t.reading = reader.readInto(start, payloads).finally(() => {
      if (ahead) this.#readAheadDone()
    }).then(
      (got) => {
        t.reading = undefined
        if (t.closed) {
          this.#retire(slab)
          return
        }
        if (got !== len) {
          this.#retire(slab)
          this.#fail(t, new StorageError(`read returned ${got} of ${len} bytes`))
          return
        }
        t.windows.push({ start, length: len, slab, recordStarts, frameStarts })
        this.#fill(t)
        this.#kick()
      },
      (err: unknown) => {
        t.reading = undefined
        this.#retire(slab)
        if (!t.closed) this.#fail(t, new StorageError("read", { cause: err }))
      },
    )
  }

  /** True while more than one reader asked for chunks within SENDER_SHARED_MS. */
  #shared(): boolean {
    if (this.#readers.size < 2) return false
    const cutoff = Date.now() - SENDER_SHARED_MS
    for (const [reader, at] of this.#readers) if (at < cutoff) this.#readers.delete(reader)
    return this.#readers.size > 1
  }

  /** A read ahead finished: waiting transfers may read. */
  #readAheadDone(): void {
    this.#readsAhead.done()
    for (let t = this.#readsAhead.next(); t !== undefined; t = this.#readsAhead.next()) if (!t.closed) this.#fill(t)
  }

  /** Payload bytes sendable right now (buffered and credited). */
  #ready = (t: OutTransfer): boolean => {
    const w = t.windows[0]
    return w !== undefined && t.credit.limit > t.next && w.start <= t.next
  }

  /**
   * Sends frames within `allowance`; returns payload bytes sent. A run of whole frames goes
   * out as one socket write of its PUB records; where credit ends mid-frame, a partial frame
   * is copied out and published.
   */
  #serve = (t: OutTransfer, allowance: number): number => {
    let sent = 0
    while (!t.closed) {
      const w = t.windows[0]
      if (w === undefined) break
      const wEnd = w.start + w.length
      if (t.next >= wEnd) {
        this.#retire(t.windows.shift()!.slab)
        this.#fill(t)
        continue
      }
      const rel = t.next - w.start
      const index = Math.floor(rel / DATA_MAX_PAYLOAD)
      const within = rel - index * DATA_MAX_PAYLOAD
      const slotEnd = (i: number) => Math.min(w.start + (i + 1) * DATA_MAX_PAYLOAD, wEnd)
      const fits = (end: number) => end <= t.credit.limit && end - t.next <= allowance - sent
      let end: number
      let frames: number
      if (within === 0 && fits(slotEnd(index))) {
        let last = index + 1 // whole frames [index, last) fit the credit and the allowance
        while (last < w.frameStarts.length && fits(slotEnd(last))) last++
        end = slotEnd(last - 1)
        frames = last - index
        if (!this.#sendWhole(t, w, index, last, end - t.next)) break
      } else {
        end = Math.min(slotEnd(index), t.credit.limit)
        if (end <= t.next || end - t.next > allowance - sent) break
        const from = w.frameStarts[index]! + DATA_HEADER_BYTES + within
        frames = 1
        if (!this.#sendFrame(t, encodeDataFrom(t.next, w.slab, from, from + end - t.next))) break
      }
      sent += end - t.next
      this.#bytes += end - t.next
      this.#frames += frames
      t.next = end
      if (t.next === t.length) {
        this.#finish(t)
        break
      }
      if (end === wEnd) {
        this.#retire(t.windows.shift()!.slab)
        this.#fill(t)
      }
    }
    return sent
  }

  /** Frames [first, last) of `w` (`payload` bytes): one socket write, else one publish each. */
  #sendWhole(t: OutTransfer, w: Window, first: number, last: number, payload: number): boolean {
    const pool = this.#poolOf(w.slab)
    const records = w.slab.subarray(w.recordStarts[first]!, w.recordStarts[last]!)
    pool?.lend(w.slab)
    if (writeRecords(this.#nc, records, last - first, payload + (last - first) * DATA_HEADER_BYTES, () => pool?.settled(w.slab))) {
      this.#framesDirect += last - first
      return true
    }
    pool?.settled(w.slab)
    for (let i = first; i < last; i++) {
      // the frame is its record without the PUB line and the trailing CRLF
      if (!this.#sendFrame(t, w.slab.subarray(w.frameStarts[i]!, w.recordStarts[i + 1]! - 2))) return false
    }
    return true
  }

  /** Publishes one frame; a connection that refuses it drops the transfer. */
  #sendFrame(t: OutTransfer, frame: Uint8Array): boolean {
    if (this.#publish(t.subject, frame)) return true
    this.#release(t, "dropped")
    return false
  }

  #kick(): void {
    const wake = this.#wake
    if (wake !== undefined) {
      this.#wake = undefined
      wake()
    } else if (!this.#pumping && !this.#closed) {
      void this.#pump()
    }
  }

  /** The single send loop: DRR rounds, yielding to the event loop every ~256 KiB. */
  async #pump(): Promise<void> {
    this.#pumping = true
    try {
      let sinceYield = 0
      while (this.#closed === undefined && this.#drr.size > 0) {
        const sent = this.#drr.round(this.#ready, this.#serve)
        sinceYield += sent
        // the server is behind on what we wrote: more would only queue in front of it
        const paced = sent > 0 ? this.#pace.wrote(sent) : undefined
        if (paced !== undefined) await paced
        if (sent === 0) {
          // nothing credited or buffered: sleep until a CREDIT, a read or a new request
          await new Promise<void>((resolve) => (this.#wake = resolve))
          sinceYield = 0
        } else if (sinceYield >= SENDER_YIELD_BYTES) {
          sinceYield = 0
          await new Promise<void>((resolve) => setImmediate(resolve))
          await socketDrained(this.#nc, SENDER_SOCKET_HIGH_WATER, () => this.#closed !== undefined)
          // nats.js flushes its queue in microtasks, so it is often empty here: sent slabs are
          // free again (left retired until the next read, too many would become garbage)
          this.#recycle()
        }
      }
    } finally {
      this.#pumping = false
      this.#wake = undefined
    }
  }

  /** Makes retired slabs reusable once nats.js and the socket hold no views of them. */
  #recycle(): void {
    const empty = outboundEmpty(this.#nc)
    this.#slabs.recycle(empty)
    this.#busySlabs.recycle(empty)
  }

  /** The pool a slab belongs to (by size); undefined for a one-off slab (a very long subject). */
  #poolOf(slab: Uint8Array): SlabPool | undefined {
    if (slab.byteLength === this.#slabs.slabBytes) return this.#slabs
    return slab.byteLength === this.#busySlabs.slabBytes ? this.#busySlabs : undefined
  }

  /** Hands a sent (or unused) slab back to the pool of its size. */
  #retire(slab: Uint8Array): void {
    this.#poolOf(slab)?.retire(slab)
  }

  #armSweep(): void {
    if (this.#sweep !== undefined) return
    this.#sweep = setInterval(() => {
      const cutoff = Date.now() - this.#idleDropMs
      for (const t of [...this.#transfers.values()]) if (t.lastCreditAt < cutoff) this.#release(t, "dropped")
    }, Math.max(10, Math.floor(this.#idleDropMs / 4)))
    this.#sweep.unref?.()
  }
}
