/**
 * Pure receiver-side state: reassembly of one chunk from offset-carrying DATA frames and
 * the credit it grants. No I/O, no timers: the receiver drives it per frame.
 */
import { DEFAULT_ACK_DIVISOR, DATA_MAX_PAYLOAD } from "./constants.ts"

/** What `Reassembly.accept` did with a frame. */
export type AcceptResult =
  /** appended at the contiguous end */
  | "ok"
  /** entirely below the contiguous end (a resend after a resume): ignored */
  | "dup"
  /** starts after the contiguous end: frames were lost; re-request from `contiguous` */
  | "gap"
  /** overlaps the contiguous end without starting at it, or runs past the chunk's length */
  | "invalid"

/**
 * The chunk buffer (exactly `length` bytes, allocated once) and its contiguous prefix.
 * Only in-order bytes are accepted, so `bytes.subarray(0, contiguous)` is always exactly
 * what the holders sent in order: an out-of-order or missing frame is a gap, never a hole.
 */
export class Reassembly {
  readonly bytes: Uint8Array
  #contiguous = 0

  /** `backing` (≥ length bytes, e.g. from a pool) avoids a fresh allocation's page faults. */
  constructor(readonly length: number, backing?: Uint8Array) {
    this.bytes = backing === undefined ? new Uint8Array(length) : backing.subarray(0, length)
  }

  /** Bytes [0, contiguous) are received, in order. */
  get contiguous(): number {
    return this.#contiguous
  }

  get complete(): boolean {
    return this.#contiguous === this.length
  }

  accept(offset: number, payload: Uint8Array): AcceptResult {
    const end = offset + payload.length
    if (end > this.length) return "invalid"
    if (offset === this.#contiguous) {
      if (payload.length === 0) return "dup"
      this.bytes.set(payload, offset)
      this.#contiguous = end
      return "ok"
    }
    if (offset > this.#contiguous) return "gap"
    return end <= this.#contiguous ? "dup" : "invalid"
  }
}

/**
 * Credit the receiver grants: an absolute byte offset the holder may send up to.
 * Cumulative: it advances with consumption and never regresses. A new grant is due once
 * the holder's remaining allowance has shrunk by `ackEvery` bytes (≈ window/4).
 */
export class CreditWindow {
  readonly window: number
  readonly ackEvery: number
  #granted: number

  constructor(window: number, startOffset = 0, ackEvery = Math.max(DATA_MAX_PAYLOAD, Math.floor(window / DEFAULT_ACK_DIVISOR))) {
    if (!(window >= DATA_MAX_PAYLOAD)) throw new RangeError(`window must be ≥ one frame (${DATA_MAX_PAYLOAD})`)
    this.window = window
    // ackEvery > window would deadlock the holder: clamp it into the window
    this.ackEvery = Math.min(Math.max(1, ackEvery), window)
    this.#granted = startOffset + window
  }

  /** The absolute limit granted so far. */
  get granted(): number {
    return this.#granted
  }

  /** True when a frame ending at `end` stays within the granted credit. */
  allows(end: number): boolean {
    return end <= this.#granted
  }

  /**
   * After consuming up to `contiguous`: the new limit to send to the holder, or undefined
   * when no grant is due yet.
   */
  consumed(contiguous: number): number | undefined {
    const next = contiguous + this.window
    if (next - this.#granted < this.ackEvery) return undefined
    this.#granted = next // cumulative: advance, never regress
    return next
  }
}

/** Holder-side view of the credit: the highest limit received (never regresses). */
export class SendCredit {
  #limit: number
  constructor(initial: number) {
    this.#limit = initial
  }
  get limit(): number {
    return this.#limit
  }
  /** Applies a CREDIT; returns true when it raised the limit. */
  update(limit: number): boolean {
    if (limit <= this.#limit) return false
    this.#limit = limit
    return true
  }
}
