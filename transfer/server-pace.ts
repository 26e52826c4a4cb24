/**
 * Keeps a holder at most a few hundred KiB ahead of what the NATS server has taken from its
 * connection. Bytes a holder writes wait in its socket and in the server's read buffer before
 * the server hands them to their subscribers, and anything written after them, a small
 * reply to another reader included, waits behind all of them. Credit bounds the bytes
 * between a holder and each reader, which is several MiB for a bulk read (six chunks, each
 * with a ~2 MB window); this bounds the part of it that sits in front of the server.
 *
 * The server answers a PING only after everything the client sent before it, so an answered
 * PING confirms that everything before it was taken. A PING goes out every `pingEvery`
 * bytes, and the writer waits while more than `maxUnanswered()` are outstanding (re-read at
 * every PING, so a holder can pace tightly only while others wait on it).
 */
export class ServerPace {
  #sincePing = 0
  readonly #pongs: Array<Promise<void>> = []
  #stopped = false
  /** Ends the writer's current wait (set while it waits). */
  #giveUp: (() => void) | undefined
  /** Times the writer was made to wait, and for how long in all. */
  waits = 0
  waitMs = 0

  constructor(
    /** Sends a PING and resolves on its PONG (nats.js `flush`); rejects when the connection goes. */
    private readonly ping: () => Promise<void>,
    private readonly pingEvery: number,
    private readonly maxUnanswered: () => number,
    /** A server that has not answered for this long is not waited for any more (it may be stuck). */
    private readonly maxWaitMs = 1_000,
  ) {}

  /** PINGs sent and not yet answered. */
  get unanswered(): number {
    return this.#pongs.length
  }

  /**
   * Counts `bytes` as written. Returns a promise to wait for when more than `maxUnanswered()`
   * PINGs are unanswered, else undefined (no await, so no extra turn per send round).
   */
  wrote(bytes: number): Promise<void> | undefined {
    this.#sincePing += bytes
    if (this.#sincePing >= this.pingEvery) {
      this.#sincePing = 0
      // a lost connection rejects its PINGs: pacing then stops waiting (the sender drops its transfers)
      this.#pongs.push(this.ping().catch(() => {}))
    }
    const max = this.maxUnanswered()
    return this.#pongs.length > max ? this.#drain(max) : undefined
  }

  /**
   * The holder closed: a writer waiting returns at once and none waits again (a closed
   * connection may never answer its PINGs; nothing should wait out `maxWaitMs` for them).
   */
  stop(): void {
    this.#stopped = true
    this.#giveUp?.()
  }

  async #drain(max: number): Promise<void> {
    if (this.#stopped) return
    this.waits++
    const t0 = performance.now()
    let timer: ReturnType<typeof setTimeout> | undefined
    const gaveUp = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), this.maxWaitMs)
      this.#giveUp = () => resolve("late")
    })
    try {
      while (this.#pongs.length > max) {
        // an unanswered PING stays counted until its PONG comes or the connection goes
        if ((await Promise.race([this.#pongs[0], gaveUp])) === "late") return
        this.#pongs.shift()
      }
    } finally {
      clearTimeout(timer)
      this.#giveUp = undefined
      this.waitMs += performance.now() - t0
    }
  }
}
