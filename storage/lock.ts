/** A FIFO async mutex: index mutations run one at a time (refcounts are read-modify-write). */
export class Mutex {
  #tail: Promise<void> = Promise.resolve()

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail
    let release!: () => void
    this.#tail = new Promise<void>((r) => (release = r))
    await prev
    try {
      return await fn()
    } finally {
      release()
    }
  }
}

/** Counts holders of a key (chunks pinned by in-flight puts, so a delete never removes them). */
export class KeyPins {
  readonly #counts = new Map<string, number>()
  add(key: string): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1)
  }
  release(key: string): void {
    const n = (this.#counts.get(key) ?? 0) - 1
    if (n <= 0) this.#counts.delete(key)
    else this.#counts.set(key, n)
  }
  has(key: string): boolean {
    return this.#counts.has(key)
  }
}
