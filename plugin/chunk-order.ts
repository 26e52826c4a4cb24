/**
 * The order in which a node fetches a blob's chunks. Each node starts from its own shuffle
 * (so readers that start together ask for different chunks), and whenever it picks the next
 * chunk it prefers one a peer already holds over one only the blob's holders have. Many
 * readers of one blob then take most chunks from each other instead of all from the
 * producer: the producer serves each chunk about once, early, and the readers fan it out.
 */
export class ChunkOrder {
  readonly #order: number[]
  readonly #taken: boolean[]
  #head = 0
  #left: number

  constructor(
    count: number,
    /** Seeds this node's shuffle (its node id). */
    seed: string,
    /** True when some live peer other than this node holds chunk `i`. */
    private readonly peerHolds: (i: number) => boolean,
    /** How many upcoming chunks one pick looks through for a peer-held one (bounds the cost on huge blobs). */
    private readonly lookahead = 64,
  ) {
    this.#order = shuffled(count, seed)
    this.#taken = new Array<boolean>(count).fill(false)
    this.#left = count
  }

  /** The next chunk index to fetch, or undefined when every chunk was handed out. */
  next(): number | undefined {
    if (this.#left === 0) return undefined
    while (this.#taken[this.#head]) this.#head++
    let pick = this.#head
    for (let at = this.#head, seen = 0; at < this.#order.length && seen < this.lookahead; at++) {
      if (this.#taken[at]) continue
      seen++
      if (this.peerHolds(this.#order[at]!)) {
        pick = at
        break
      }
    }
    this.#taken[pick] = true
    this.#left--
    return this.#order[pick]!
  }
}

/** 0..n-1 in an order fixed by `seedText` (FNV-1a seed, xorshift-multiply mixing, Fisher–Yates). */
export function shuffled(n: number, seedText: string): number[] {
  let s = 2166136261
  for (let i = 0; i < seedText.length; i++) s = Math.imul(s ^ seedText.charCodeAt(i), 16777619)
  const out = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    s = Math.imul(s ^ (s >>> 15), 2246822507) ^ Math.imul(s ^ (s >>> 13), 3266489909)
    const j = (s >>> 0) % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
