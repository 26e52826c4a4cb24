/**
 * Deterministic pseudo-random bytes (xorshift128), so failures reproduce. Fast enough to
 * generate GiBs in benchmarks (~1-2 GB/s).
 */
export function seededBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size)
  fillSeeded(out, seed)
  return out
}

/** Fills `out` from the stream for `seed`, continuing at word offset `start` is not needed: one shot. */
export function fillSeeded(out: Uint8Array, seed: number): void {
  let x = seed | 0 || 1
  let y = 362436069
  let z = 521288629
  let w = 88675123
  const words = Math.floor(out.length / 4)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  for (let i = 0; i < words; i++) {
    const t = x ^ (x << 11)
    x = y
    y = z
    z = w
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) | 0
    view.setUint32(i * 4, w >>> 0, true)
  }
  for (let i = words * 4; i < out.length; i++) out[i] = (seed * 31 + i * 7) & 0xff
}

/** An async iterable of `total` seeded bytes in pieces of `piece` bytes (flat memory). */
export async function* seededStream(total: number, seed = 1, piece = 1 << 20): AsyncGenerator<Uint8Array> {
  const block = seededBytes(Math.min(piece, Math.max(total, 1)), seed)
  // vary each piece cheaply so repeated blocks do not dedupe into identical chunks
  let sent = 0
  let n = 0
  while (sent < total) {
    const len = Math.min(block.length, total - sent)
    const out = block.slice(0, len)
    new DataView(out.buffer).setUint32(0, n++ ^ seed, true)
    yield out
    sent += len
  }
}

/** Splits `bytes` into pieces of pseudo-random sizes in [1, maxPiece]. */
export function* randomSplits(bytes: Uint8Array, seed: number, maxPiece: number): Generator<Uint8Array> {
  let s = seed | 0 || 1
  let off = 0
  while (off < bytes.length) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    const len = 1 + ((s >>> 0) % maxPiece)
    yield bytes.subarray(off, Math.min(bytes.length, off + len))
    off += len
  }
}
