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
  FRAME_MAX_BYTES,
  DEFAULT_MAX_ACTIVE_TRANSFERS,
  DEFAULT_PREFIX,
  DEFAULT_QUANTUM_BYTES,
  BUSY_READ_WINDOW_BYTES,
  DEFAULT_READ_WINDOW_BYTES,
  DEFAULT_SENDER_IDLE_DROP_MS,
  SENDER_FEW_TRANSFERS,
  SENDER_SOCKET_HIGH_WATER,
  SENDER_YIELD_BYTES,
} from "./constants.ts"
import { ErrCode, decodeControl, encodeDataFrom, encodeErr, encodeFin, encodeHead, errCodeOf, layoutDataSlab } from "./frames.ts"
import { DeficitRoundRobin } from "./scheduler.ts"
import { SlabPool } from "./slab-pool.ts"
import { holderSubject } from "./subjects.ts"
import { SendCredit } from "./window.ts"

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
  readonly errorsSent: number
}

/** A running holder; `close()` stops serving and releases every transfer. */
export interface Sender extends AsyncDisposable {
  readonly subject: string
  stats(): SenderStats
  close(): Promise<void>
}

/** One read window, already laid out as DATA frames (see {@link layoutDataSlab}). */
interface Window {
  readonly start: number
  readonly length: number
  readonly slab: Uint8Array
  /** The pooled buffer the slab lives in (retired to the pool once sent). */
  readonly backing: Uint8Array
}

/** The nats.js internals the holder peeks at (both uses degrade safely when absent). */
interface NatsInternals {
  protocol?: {
    transport?: { socket?: { writableLength?: number; writableNeedDrain?: boolean; once?(e: "drain", f: () => void): void; off?(e: "drain", f: () => void): void } }
    outbound?: { size?: () => number }
  }
}

/** One active outgoing transfer, keyed by its data subject. */
interface OutTransfer {
  readonly subject: string
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

  #started = 0
  #completed = 0
  #dropped = 0
  #bytes = 0
  #frames = 0
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
    this.#slabs = new SlabPool((this.#readWindow / DATA_MAX_PAYLOAD) * FRAME_MAX_BYTES, 2 * SENDER_FEW_TRANSFERS)
    this.#busySlabs = new SlabPool((this.#busyReadWindow / DATA_MAX_PAYLOAD) * FRAME_MAX_BYTES, 64)
    this.#drr = new DeficitRoundRobin(Math.max(DATA_MAX_PAYLOAD, o.quantumBytes ?? DEFAULT_QUANTUM_BYTES))
    this.#sub = nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err === null) this.#onControl(msg)
      },
    })
  }

  stats(): SenderStats {
    return {
      activeTransfers: this.#transfers.size,
      transfersStarted: this.#started,
      transfersCompleted: this.#completed,
      transfersDropped: this.#dropped,
      bytesServed: this.#bytes,
      framesSent: this.#frames,
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
    const previous = this.#transfers.get(subject)
    if (previous !== undefined) this.#release(previous, "dropped")
    if (this.#transfers.size >= this.#maxActive) {
      this.#sendErr(subject, ErrCode.BUSY, `holder serves ${this.#transfers.size} transfers`)
      return
    }
    const t: OutTransfer = {
      subject,
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
    for (const w of t.windows) this.#retire(w.backing)
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
    t.readAt = start + len
    // the source reads straight into the frames' payload slots (no copy) of a pooled slab
    this.#recycle()
    const backing = (few ? this.#slabs : this.#busySlabs).take()
    const { slab, payloads } = layoutDataSlab(start, len, backing)
    t.reading = reader.readInto(start, payloads).then(
      (got) => {
        t.reading = undefined
        if (t.closed) {
          this.#retire(backing)
          return
        }
        if (got !== len) {
          this.#retire(backing)
          this.#fail(t, new StorageError(`read returned ${got} of ${len} bytes`))
          return
        }
        t.windows.push({ start, length: len, slab, backing })
        this.#fill(t)
        this.#kick()
      },
      (err: unknown) => {
        t.reading = undefined
        this.#retire(backing)
        if (!t.closed) this.#fail(t, new StorageError("read", { cause: err }))
      },
    )
  }

  /** Payload bytes sendable right now (buffered and credited). */
  #ready = (t: OutTransfer): boolean => {
    const w = t.windows[0]
    return w !== undefined && t.credit.limit > t.next && w.start <= t.next
  }

  /**
   * Sends frames within `allowance`; returns payload bytes sent. Full frames are slices of
   * the window's slab; where credit ends mid-frame, a partial frame is copied out.
   */
  #serve = (t: OutTransfer, allowance: number): number => {
    let sent = 0
    while (!t.closed) {
      const w = t.windows[0]
      if (w === undefined) break
      const wEnd = w.start + w.length
      if (t.next >= wEnd) {
        this.#retire(t.windows.shift()!.backing)
        this.#fill(t)
        continue
      }
      const rel = t.next - w.start
      const index = Math.floor(rel / DATA_MAX_PAYLOAD)
      const frameStart = index * FRAME_MAX_BYTES // slab position of this slot's header
      const slotEnd = Math.min(w.start + (index + 1) * DATA_MAX_PAYLOAD, wEnd)
      const end = Math.min(slotEnd, t.credit.limit)
      const n = end - t.next
      if (n <= 0 || n > allowance - sent) break
      const within = rel - index * DATA_MAX_PAYLOAD
      const frame =
        within === 0 && end === slotEnd
          ? w.slab.subarray(frameStart, frameStart + DATA_HEADER_BYTES + n)
          : encodeDataFrom(t.next, w.slab, frameStart + DATA_HEADER_BYTES + within, frameStart + DATA_HEADER_BYTES + within + n)
      if (!this.#publish(t.subject, frame)) {
        this.#release(t, "dropped")
        break
      }
      t.next = end
      sent += n
      this.#frames++
      this.#bytes += n
      if (t.next === t.length) {
        this.#finish(t)
        break
      }
      if (end === wEnd) {
        this.#retire(t.windows.shift()!.backing)
        this.#fill(t)
      }
    }
    return sent
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
        if (sent === 0) {
          // nothing credited or buffered: sleep until a CREDIT, a read or a new request
          await new Promise<void>((resolve) => (this.#wake = resolve))
          sinceYield = 0
        } else if (sinceYield >= SENDER_YIELD_BYTES) {
          sinceYield = 0
          await new Promise<void>((resolve) => setImmediate(resolve))
          await this.#socketDrained()
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

  /** Makes retired slabs reusable once nats.js holds no frame views any more. */
  #recycle(): void {
    const outboundEmpty = this.#outboundEmpty()
    this.#slabs.recycle(outboundEmpty)
    this.#busySlabs.recycle(outboundEmpty)
  }

  /** Hands a sent (or unused) slab back to the pool of its size. */
  #retire(backing: Uint8Array): void {
    ;(backing.byteLength === this.#slabs.slabBytes ? this.#slabs : this.#busySlabs).retire(backing)
  }

  /**
   * True only when nats.js's outbound queue is provably empty (so it holds no frame views);
   * false when its internals are not what we expect, which merely disables slab reuse.
   */
  #outboundEmpty(): boolean {
    const outbound = (this.#nc as unknown as NatsInternals).protocol?.outbound
    return typeof outbound?.size === "function" && outbound.size() === 0
  }

  /**
   * nats.js drops `socket.write()`'s backpressure signal, so the holder watches the socket
   * itself: above the high-water mark it waits for 'drain'. Keeping the queue short also
   * keeps the queued write buffers young: buffers that wait long are promoted and each
   * ~64 MiB of them costs a full mark-compact (measured: ~40 per GiB with an 8 MiB queue).
   */
  async #socketDrained(): Promise<void> {
    const socket = (this.#nc as unknown as NatsInternals).protocol?.transport?.socket
    while (this.#closed === undefined && socket !== undefined && (socket.writableLength ?? 0) > SENDER_SOCKET_HIGH_WATER) {
      await new Promise<void>((resolve) => {
        if (socket.writableNeedDrain !== true || typeof socket.once !== "function") {
          setTimeout(resolve, 1)
          return
        }
        const done = () => {
          clearTimeout(timer)
          socket.off?.("drain", done)
          resolve()
        }
        // never hang on a 'drain' that does not come (socket closed, replaced on reconnect)
        const timer = setTimeout(done, 50)
        socket.once("drain", done)
      })
    }
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
