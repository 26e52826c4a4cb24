import type { ChunkStore, ChunkWriteOptions } from "./chunk-store.ts"

/**
 * Routes chunks by size: small ones (≤ `threshold`) to a store that is cheap per item (the
 * LevelDB index), large ones to files. A tree of thousands of tiny files otherwise pays a
 * file create, write, close and rename per file, which caps it near a thousand files/s here.
 */
export class TieredChunkStore implements ChunkStore {
  constructor(
    private readonly small: ChunkStore,
    private readonly large: ChunkStore,
    private readonly threshold: number,
  ) {}

  /** The tier a chunk of `length` bytes lives in (routing is by size, so it is never in the other). */
  #for(length: number): ChunkStore {
    return length <= this.threshold ? this.small : this.large
  }

  async has(hex: string, length?: number) {
    if (length !== undefined) return this.#for(length).has(hex)
    return (await this.small.has(hex)) || this.large.has(hex)
  }
  async read(hex: string, length?: number) {
    if (length !== undefined) return this.#for(length).read(hex)
    return (await this.small.read(hex)) ?? this.large.read(hex)
  }
  async lengthOf(hex: string) {
    return (await this.small.lengthOf(hex)) ?? this.large.lengthOf(hex)
  }
  async openRange(hex: string) {
    return (await this.small.openRange(hex)) ?? this.large.openRange(hex)
  }
  async write(hex: string, bytes: Uint8Array, options?: ChunkWriteOptions) {
    // each tier's write is a no-op when the chunk is already there
    return this.#for(bytes.length).write(hex, bytes, options)
  }
  async remove(hex: string) {
    await Promise.all([this.small.remove(hex), this.large.remove(hex)])
  }
  async *list() {
    yield* this.small.list()
    yield* this.large.list()
  }
  async sync() {
    await this.small.sync()
    await this.large.sync()
  }
  async bytes() {
    return (await this.small.bytes()) + (await this.large.bytes())
  }
  async close() {
    await this.small.close()
    await this.large.close()
  }
}
