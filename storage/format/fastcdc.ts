import { CHUNK_AVG_BYTES, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES } from "./constants.ts"
import { GEAR } from "./gear.ts"

/** The gear table shifted left once, for the two-bytes-per-step loop. */
const GEAR_LS = Int32Array.from(GEAR, (g) => (g << 1) | 0)

export interface FastCdcOptions {
  readonly min?: number
  readonly avg?: number
  readonly max?: number
}

/**
 * A mask over `n` bits placed at bits 30..(31 − n). Left-shift gear: bit k depends on the
 * last k+1 bytes, so high bits give a ~31-byte window; bit 31 stays out of every mask.
 */
function highMask(n: number): number {
  return ((2 ** n - 1) * 2 ** (31 - n)) | 0
}

/**
 * Streaming FastCDC-2020 with normalization level 2 (Xia et al., 2020): no hashing below
 * `min`, a stricter mask (log2(avg) + 2 bits) before `avg`, a looser one (log2(avg) − 2)
 * after, a forced cut at `max`. A chunk ends right after the byte whose gear hash matches.
 *
 * The state is just (bytes in the open chunk, gear hash), so `update` takes pieces of any
 * size and cuts never depend on how the input was split. It copies nothing: it returns the
 * lengths of the chunks that end inside the piece; the caller slices.
 *
 * @example
 * const cdc = new FastCdc()
 * for await (const piece of source) for (const len of cdc.update(piece)) emit(len)
 * const tail = cdc.finish()   // length of the last open chunk (0 if none)
 */
export class FastCdc {
  readonly min: number
  readonly avg: number
  readonly max: number
  readonly #maskS: number
  readonly #maskL: number
  readonly #maskSLs: number
  readonly #maskLLs: number
  #len = 0
  #hash = 0

  constructor(options: FastCdcOptions = {}) {
    this.min = options.min ?? CHUNK_MIN_BYTES
    this.avg = options.avg ?? CHUNK_AVG_BYTES
    this.max = options.max ?? CHUNK_MAX_BYTES
    if (!(this.min >= 64 && this.min <= this.avg && this.avg <= this.max)) {
      throw new RangeError(`need 64 <= min <= avg <= max, got ${this.min}/${this.avg}/${this.max}`)
    }
    const bits = Math.round(Math.log2(this.avg))
    this.#maskS = highMask(Math.min(bits + 2, 30))
    this.#maskL = highMask(Math.max(bits - 2, 1))
    this.#maskSLs = (this.#maskS << 1) | 0
    this.#maskLLs = (this.#maskL << 1) | 0
  }

  /** Bytes in the chunk that is still open. */
  get pending(): number {
    return this.#len
  }

  /** Feeds a piece; returns the lengths of the chunks completed inside it, in order. */
  update(piece: Uint8Array): number[] {
    const cuts: number[] = []
    const { min, avg, max } = this
    const maskS = this.#maskS
    const maskL = this.#maskL
    const gear = GEAR
    const gearLs = GEAR_LS
    const n = piece.length
    let len = this.#len
    let h = this.#hash
    let pos = 0
    while (pos < n) {
      if (len < min) {
        // below min nothing is hashed: jump over it
        const skip = Math.min(min - len, n - pos)
        len += skip
        pos += skip
        continue
      }
      const strict = len < avg
      const mask = strict ? maskS : maskL
      const maskLs = strict ? this.#maskSLs : this.#maskLLs
      const stop = Math.min(n, pos + ((strict ? avg : max) - len))
      // two bytes per step (fastcdc-rs 2020): after the first byte the hash is kept shifted
      // left once more (gearLs = gear << 1), checked against mask << 1; no mask uses bit 31,
      // so the cut points are exactly those of the one-byte loop
      let i = pos
      const pairs = stop - ((stop - pos) & 1)
      for (; i < pairs; i += 2) {
        h = ((h << 2) + gearLs[piece[i]!]!) | 0
        if ((h & maskLs) === 0) break // a cut resets h, so its shifted form never leaks
        h = (h + gear[piece[i + 1]!]!) | 0
        if ((h & mask) === 0) {
          i++
          break
        }
      }
      if (i >= pairs) {
        for (; i < stop; i++) {
          h = ((h << 1) + gear[piece[i]!]!) | 0
          if ((h & mask) === 0) break
        }
      }
      if (i < stop) {
        len += i + 1 - pos
        pos = i + 1
        cuts.push(len)
        len = 0
        h = 0
        continue
      }
      len += stop - pos
      pos = stop
      if (len === max) {
        cuts.push(len)
        len = 0
        h = 0
      }
    }
    this.#len = len
    this.#hash = h
    return cuts
  }

  /** Ends the input: returns the last chunk's length (0 if none) and resets. */
  finish(): number {
    const len = this.#len
    this.#len = 0
    this.#hash = 0
    return len
  }
}

/** Cut lengths of a whole buffer (tests, benchmarks). */
export function chunkLengths(bytes: Uint8Array, options?: FastCdcOptions): number[] {
  const cdc = new FastCdc(options)
  const cuts = cdc.update(bytes)
  const tail = cdc.finish()
  if (tail > 0) cuts.push(tail)
  return cuts
}
