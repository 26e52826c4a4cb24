import { AbortedError } from "../storage/format/errors.ts"

export interface GroupPipelineOptions<T> {
  /** Items per group. */
  groupSize: number
  /** Groups running at once; `push` waits for a free slot (the queue is bounded). */
  inFlight: number
  /** Deferred actions waiting at most; past it, `after` waits for every group pushed so far. */
  maxPendingActions: number
  run: (group: T[], signal: AbortSignal) => Promise<void>
  signal?: AbortSignal
}

/**
 * Items fed one by one, run in groups with a bounded number in flight, plus actions that must
 * wait for every item pushed before them (fetchDir: a read-only directory is closed only once
 * every file of its subtree is written). At most `inFlight + 1` groups of items and
 * `maxPendingActions` actions exist at a time, however many items go through.
 *
 * The first failure (a group's or an action's) aborts the rest, and every later call
 * rethrows it; the caller's abort rejects with AbortedError. `close()` must be called on
 * every path: it waits until nothing runs any more, so no write outlives the caller.
 */
export class GroupPipeline<T> {
  #buffer: T[] = []
  /** Items pushed so far. */
  #pushed = 0
  /** Every item before this index is done. */
  #doneThrough = 0
  /** Submitted groups in order: where each ends and whether it finished. */
  readonly #groups: Array<{ end: number; done: boolean }> = []
  readonly #running = new Set<Promise<void>>()
  readonly #actions: Array<{ mark: number; run: () => Promise<void> | void }> = []
  #actionChain: Promise<void> = Promise.resolve()
  #failure: { err: unknown } | undefined
  readonly #ctrl = new AbortController()
  readonly #signal: AbortSignal

  constructor(private readonly options: GroupPipelineOptions<T>) {
    this.#signal = options.signal ? AbortSignal.any([options.signal, this.#ctrl.signal]) : this.#ctrl.signal
  }

  /** Adds an item; when its group is full, the group starts (after waiting for a free slot). */
  async push(item: T): Promise<void> {
    this.#throwIfFailed()
    this.#buffer.push(item)
    this.#pushed++
    if (this.#buffer.length >= this.options.groupSize) await this.#submit()
  }

  /** Runs `action` once every item pushed so far is done (at once when they are). */
  async after(action: () => Promise<void> | void): Promise<void> {
    this.#throwIfFailed()
    if (this.#actions.length === 0 && this.#doneThrough >= this.#pushed) {
      await this.#guard(action)
      this.#throwIfFailed()
      return
    }
    this.#actions.push({ mark: this.#pushed, run: action })
    if (this.#actions.length >= this.options.maxPendingActions) await this.#flush()
  }

  /** Runs what is left and waits for all of it; rethrows the first failure. */
  async finish(): Promise<void> {
    await this.#flush()
  }

  /** Stops what runs (after a failure elsewhere) and waits until nothing does. */
  async close(): Promise<void> {
    if (this.#running.size > 0 || this.#actions.length > 0) this.#ctrl.abort()
    this.#actions.length = 0
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
    await this.#actionChain
  }

  async #flush(): Promise<void> {
    if (this.#buffer.length > 0) await this.#submit()
    while (this.#running.size > 0) {
      await Promise.allSettled([...this.#running])
      this.#throwIfFailed()
    }
    await this.#actionChain
    this.#throwIfFailed()
  }

  async #submit(): Promise<void> {
    while (this.#running.size >= this.options.inFlight) {
      await Promise.race(this.#running)
      this.#throwIfFailed()
    }
    const group = this.#buffer
    this.#buffer = []
    const slot = { end: this.#pushed, done: false }
    this.#groups.push(slot)
    const p: Promise<void> = this.options.run(group, this.#signal).then(
      () => {
        slot.done = true
        this.#advance()
      },
      (err) => this.#fail(err),
    )
    this.#running.add(p)
    void p.finally(() => this.#running.delete(p))
  }

  /** Moves the done mark over finished groups (in order) and starts the actions it releases. */
  #advance(): void {
    while (this.#groups.length > 0 && this.#groups[0]!.done) this.#doneThrough = this.#groups.shift()!.end
    while (this.#actions.length > 0 && this.#actions[0]!.mark <= this.#doneThrough) {
      const { run } = this.#actions.shift()!
      this.#actionChain = this.#actionChain.then(() => (this.#failure ? undefined : this.#guard(run)))
    }
  }

  /** Runs an action; its failure is recorded (never left as a rejected promise). */
  async #guard(run: () => Promise<void> | void): Promise<void> {
    try {
      await run()
    } catch (err) {
      this.#fail(err)
    }
  }

  #fail(err: unknown): void {
    if (this.#failure) return
    this.#failure = { err }
    this.#ctrl.abort()
  }

  #throwIfFailed(): void {
    // the caller's abort wins over whatever error it caused inside
    if (this.options.signal?.aborted) throw new AbortedError({ cause: this.options.signal.reason })
    if (this.#failure) throw this.#failure.err
  }
}
