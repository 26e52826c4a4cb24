import { BLOB_MAX_BYTES, CHUNK_MAX_BYTES } from "./format/constants.ts"
import { TooLargeError, throwIfAborted } from "./format/errors.ts"
import { FastCdc } from "./format/fastcdc.ts"

/** A piece of input and whether the producer guarantees it is never reused (zero-copy allowed). */
export interface IngestOptions {
  signal?: AbortSignal
  /** Pieces stay untouched for the whole put (true for a caller's whole Uint8Array). */
  stable?: boolean
  /** Called after each chunk is cut, with input bytes consumed so far. */
  onBytes?: (total: number) => void
  /** Expected input size, when known: chunk buffers start at that size instead of growing. */
  sizeHint?: number
}

/** First size of a chunk buffer when the input size is unknown; buffers double up to the max chunk. */
const INITIAL_BUFFER_BYTES = 256 * 1024

/**
 * Cuts a byte stream into content-defined chunks with flat memory. Each yielded chunk is a
 * view that stays valid until `release(chunk)` is called for it (its buffer then returns to
 * the pool); stable inputs are sliced without copying. At most `poolSize` chunk buffers
 * exist, each growing on demand up to CHUNK_MAX_BYTES, so peak memory is a few max-size
 * chunks whatever the blob size, and a small put costs only its own size.
 */
export class ChunkCutter {
  readonly #pool: Uint8Array[] = []
  readonly #waiting: Array<(b: Uint8Array) => void> = []
  #allocated = 0

  constructor(private readonly poolSize = 3) {}

  /** Hands a chunk's buffer back (a no-op for zero-copy chunks). */
  release(buffer: Uint8Array | undefined): void {
    if (buffer === undefined) return
    const next = this.#waiting.shift()
    if (next) next(buffer)
    else this.#pool.push(buffer)
  }

  async #take(initial: number): Promise<Uint8Array> {
    const b = this.#pool.pop()
    if (b) return b
    if (this.#allocated < this.poolSize) {
      this.#allocated++
      return new Uint8Array(initial)
    }
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  /** Yields `{ bytes, buffer }`: call `release(buffer)` once `bytes` is no longer needed. */
  async *cut(source: AsyncIterable<Uint8Array>, options: IngestOptions = {}): AsyncGenerator<{ bytes: Uint8Array; buffer?: Uint8Array }> {
    const cdc = new FastCdc()
    const initial = Math.max(1, Math.min(CHUNK_MAX_BYTES, options.sizeHint ?? INITIAL_BUFFER_BYTES))
    let buf = await this.#take(initial)
    /** Makes room for `need` bytes in the open chunk (copying what it holds so far). */
    const ensure = (fill: number, need: number) => {
      if (need <= buf.length) return
      const grown = new Uint8Array(Math.min(CHUNK_MAX_BYTES, Math.max(need, buf.length * 2)))
      grown.set(buf.subarray(0, fill))
      buf = grown
    }
    let fill = 0
    let total = 0
    for await (const piece of source) {
      throwIfAborted(options.signal)
      total += piece.length
      if (total > BLOB_MAX_BYTES) throw new TooLargeError("blob", total, BLOB_MAX_BYTES)
      let p = 0
      for (const len of cdc.update(piece)) {
        const need = len - fill
        if (fill === 0 && options.stable) {
          yield { bytes: piece.subarray(p, p + need) }
        } else {
          ensure(fill, len)
          buf.set(piece.subarray(p, p + need), fill)
          const full = buf
          buf = await this.#take(initial)
          yield { bytes: full.subarray(0, len), buffer: full }
        }
        p += need
        fill = 0
        options.onBytes?.(total - (piece.length - p))
      }
      if (p < piece.length) {
        if (fill + piece.length - p > CHUNK_MAX_BYTES) throw new Error("chunker invariant broken")
        ensure(fill, fill + piece.length - p)
        buf.set(piece.subarray(p), fill)
        fill += piece.length - p
      }
    }
    const tail = cdc.finish()
    if (tail !== fill) throw new Error("chunker invariant broken")
    if (tail > 0 || total === 0) {
      yield { bytes: buf.subarray(0, fill), buffer: buf }
    } else this.release(buf)
    options.onBytes?.(total)
  }
}
