import type { ChunkStore } from "./chunk-store.ts"

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

  #for(bytes: Uint8Array): ChunkStore {
    return bytes.length <= this.threshold ? this.small : this.large
  }

  async has(hex: string) {
    return (await this.small.has(hex)) || this.large.has(hex)
  }
  async read(hex: string) {
    return (await this.small.read(hex)) ?? this.large.read(hex)
  }
  async lengthOf(hex: string) {
    return (await this.small.lengthOf(hex)) ?? this.large.lengthOf(hex)
  }
  async readRange(hex: string, offset: number, length: number) {
    return (await this.small.has(hex)) ? this.small.readRange(hex, offset, length) : this.large.readRange(hex, offset, length)
  }
  async write(hex: string, bytes: Uint8Array) {
    if (await this.has(hex)) return false
    return this.#for(bytes).write(hex, bytes)
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
