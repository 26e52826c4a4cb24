import { AbortedError } from "../storage/format/errors.ts"

/**
 * An async byte semaphore: bounds the bytes of chunks in flight (per read, and node-wide).
 * A request larger than the whole budget is let through alone, so it cannot deadlock.
 */
export class ByteBudget {
  #used = 0
  readonly #waiters: Array<{ n: number; go: () => void }> = []

  constructor(readonly capacity: number) {}

  get used(): number {
    return this.#used
  }

  async acquire(n: number, signal?: AbortSignal): Promise<void> {
    if (this.#fits(n) && this.#waiters.length === 0) {
      this.#used += n
      return
    }
    await new Promise<void>((resolve, reject) => {
      const w = {
        n,
        go: () => {
          signal?.removeEventListener("abort", onAbort)
          this.#used += n
          resolve()
        },
      }
      const onAbort = () => {
        const i = this.#waiters.indexOf(w)
        if (i >= 0) this.#waiters.splice(i, 1)
        reject(new AbortedError({ cause: signal?.reason }))
      }
      signal?.addEventListener("abort", onAbort, { once: true })
      this.#waiters.push(w)
    })
  }

  release(n: number): void {
    this.#used -= n
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.n)) this.#waiters.shift()!.go()
  }

  #fits(n: number): boolean {
    return this.#used === 0 || this.#used + n <= this.capacity
  }
}
