/**
 * The port the folds declare for the bus (libp2p-components style): folds never import
 * NATS; the plugin hands the materializer an adapter over its connection. Semantics are
 * core NATS: at-most-once publish, `*`/`>` wildcards in subscribe, one reply per request.
 */

/** One received message; `respond` answers a request (a no-op when there is no reply subject). */
export interface FoldBusMessage {
  readonly subject: string
  readonly data: Uint8Array
  readonly reply?: string
  respond(data: Uint8Array): void
}

/** A live subscription; `unsubscribe` is idempotent. */
export interface FoldBusSubscription {
  unsubscribe(): void
}

/** Publish, subscribe and request/reply: all the materializer needs from NATS. */
export interface FoldBus {
  publish(subject: string, data: Uint8Array): void
  subscribe(subject: string, onMessage: (msg: FoldBusMessage) => void): FoldBusSubscription
  /** Rejects when no reply arrives within `timeoutMs` (or nobody listens). */
  request(subject: string, data: Uint8Array, opts: { timeoutMs: number }): Promise<Uint8Array>
  /**
   * Optional: calls `listener` once the bus is gone for good (the connection closed); the
   * materializer then stops itself. Returns the function that stops watching (idempotent).
   */
  onClose?(listener: () => void): () => void
  /**
   * Optional: calls `listener` each time the bus comes back after an outage (the server
   * restarted, the client failed over); what was published meanwhile is lost. Returns the
   * function that stops watching (idempotent).
   */
  onReconnect?(listener: () => void): () => void
}
