import type { NatsConnection, Subscription } from "@nats-io/nats-core"
import type { FoldBus } from "../folds/bus.ts"
import { type Denial, denialOf } from "../transfer/nats-denials.ts"

/** A FoldBus that also reports how many subscriptions it holds open (leak checks, metrics). */
export interface CountingFoldBus extends FoldBus {
  activeSubscriptions(): number
  /** Every subject this bus subscribed to (what Mesh.attach checks against the server's refusals). */
  subscribedSubjects(): string[]
  /**
   * Fold facts that did not go out because the server denies their subject: each refusal
   * the server sent, plus each publish held back after one (asking again every heartbeat
   * would only fill the server's log; a node restarted after a permission change asks again).
   */
  publishesDenied(): number
  /** Stops watching the connection's status (the mesh closed). Idempotent. */
  dispose(): void
}

/**
 * Adapts a nats.js v3 connection to the folds' bus port, so folds/ never imports NATS.
 * Subscriptions opened here are the folds' own; the caller's connection stays theirs.
 * A publish the server refuses is counted and its subject is not tried again (see
 * `publishesDenied`); the node keeps running: facts are at most once anyway.
 */
export function natsFoldBus(nc: NatsConnection): CountingFoldBus {
  const open = new Set<Subscription>()
  const subscribed = new Set<string>()
  const published = new Set<string>()
  const refused = new Set<string>()
  let denied = 0
  const unwatch = watchDenials(nc, (d) => {
    if (d.operation !== "publish" || !published.has(d.subject)) return
    denied++
    refused.add(d.subject)
  })
  return {
    publish(subject, data) {
      if (refused.has(subject)) {
        denied++
        return
      }
      published.add(subject)
      nc.publish(subject, data)
    },
    subscribe(subject, onMessage) {
      subscribed.add(subject)
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          // err: the server refused this subscription (it is over); Mesh.attach reports it
          if (err !== null) return
          onMessage({
            subject: msg.subject,
            data: msg.data,
            ...(msg.reply ? { reply: msg.reply } : {}),
            respond: (data) => {
              if (msg.reply) msg.respond(data)
            },
          })
        },
      })
      open.add(sub)
      return {
        unsubscribe() {
          if (!open.delete(sub)) return
          sub.unsubscribe()
        },
      }
    },
    async request(subject, data, opts) {
      const msg = await nc.request(subject, data, { timeout: opts.timeoutMs })
      return msg.data
    },
    onClose: (listener) => onConnectionClosed(nc, listener),
    onReconnect: (listener) => {
      const watch = watchConnection(nc)
      watch.onReconnect(listener)
      return () => watch.release()
    },
    activeSubscriptions: () => [...open].filter((s) => !s.isClosed()).length,
    subscribedSubjects: () => [...subscribed],
    publishesDenied: () => denied,
    dispose: unwatch,
  }
}

/** Refusal watchers per connection: one `nc.status()` iterator however many nodes share it. */
const denialWatchers = new WeakMap<NatsConnection, { listeners: Set<(d: Denial) => void>; stop(): void }>()

/**
 * Calls `listener` for every subscribe or publish the server refuses on `nc` from now on
 * (nats.js reports them only as `error` statuses). Returns the function that stops
 * watching (idempotent); the connection's status iterator stops with its last listener.
 */
export function watchDenials(nc: NatsConnection, listener: (d: Denial) => void): () => void {
  let watcher = denialWatchers.get(nc)
  if (watcher === undefined) {
    // nats.js returns a QueuedIterator: stop() ends the loop below
    const status = nc.status() as AsyncIterable<unknown> & { stop(): void }
    const fresh = { listeners: new Set<(d: Denial) => void>(), stop: () => status.stop() }
    watcher = fresh
    denialWatchers.set(nc, fresh)
    void (async () => {
      try {
        for await (const s of status) {
          const d = denialOf(s)
          if (d !== undefined) for (const l of [...fresh.listeners]) l(d)
        }
      } catch {
        // iterator stopped
      } finally {
        if (denialWatchers.get(nc) === fresh) denialWatchers.delete(nc)
      }
    })()
  }
  const mine = watcher
  mine.listeners.add(listener)
  return () => {
    if (!mine.listeners.delete(listener) || mine.listeners.size > 0) return
    if (denialWatchers.get(nc) === mine) denialWatchers.delete(nc)
    mine.stop()
  }
}

/** Listeners per connection: one `nc.closed()` watcher however many nodes share it. */
const closeListeners = new WeakMap<NatsConnection, Set<() => void>>()

/**
 * Calls `listener` once `nc` has closed (`nc.closed()` resolved: `close()`, a finished
 * `drain()`, or reconnecting given up), soon after when it already has. Returns the function
 * that stops watching: a node that closes first leaves nothing behind on a connection that
 * lives on (one watcher per connection, not one per node ever opened on it).
 */
export function onConnectionClosed(nc: NatsConnection, listener: () => void): () => void {
  let listeners = closeListeners.get(nc)
  if (listeners === undefined) {
    const fresh = new Set<() => void>()
    listeners = fresh
    closeListeners.set(nc, fresh)
    const fire = () => {
      if (closeListeners.get(nc) === fresh) closeListeners.delete(nc)
      for (const l of [...fresh]) {
        fresh.delete(l)
        try {
          l()
        } catch {
          // one listener's failure must not keep the others from stopping
        }
      }
    }
    void nc.closed().then(fire, fire)
  }
  const mine = listeners
  mine.add(listener)
  return () => {
    mine.delete(listener)
  }
}

/** What one connection's status stream said so far (shared by every node on it). */
export interface ConnectionWatch {
  /** Between nats.js `disconnect` and `reconnect`: nothing we publish gets anywhere. */
  readonly down: boolean
  /** When it went down (meaningful while `down`). */
  readonly downSince: number
  /** When it last came back (-Infinity before any reconnect). */
  readonly reconnectedAt: number
  /** Disconnects and reconnects seen while watched. */
  readonly disconnects: number
  readonly reconnects: number
  /** Calls `listener` after each reconnect, until `release()`. */
  onReconnect(listener: () => void): void
  /** Stops this handle (idempotent); the status iterator stops with the last handle. */
  release(): void
}

interface Watcher {
  down: boolean
  downSince: number
  reconnectedAt: number
  disconnects: number
  reconnects: number
  readonly listeners: Set<() => void>
  handles: number
  stop(): void
}

const connectionWatchers = new WeakMap<NatsConnection, Watcher>()

/**
 * Watches `nc` for its server going away and coming back (a restart, a failover to another
 * cluster member, a slow-consumer cut-off: nats.js `disconnect`/`reconnect`), so a node can
 * wait out the outage and resync after it instead of blaming its peers. One status iterator
 * per connection however many nodes watch it, stopped with the last handle.
 */
export function watchConnection(nc: NatsConnection): ConnectionWatch {
  let w = connectionWatchers.get(nc)
  if (w === undefined) {
    // nats.js returns a QueuedIterator: stop() ends the loop below
    const status = nc.status() as AsyncIterable<{ type: string }> & { stop(): void }
    const fresh: Watcher = { down: false, downSince: 0, reconnectedAt: Number.NEGATIVE_INFINITY, disconnects: 0, reconnects: 0, listeners: new Set(), handles: 0, stop: () => status.stop() }
    w = fresh
    connectionWatchers.set(nc, fresh)
    void (async () => {
      try {
        for await (const s of status) {
          if (s.type === "disconnect" && !fresh.down) {
            fresh.down = true
            fresh.downSince = Date.now()
            fresh.disconnects++
          } else if (s.type === "reconnect") {
            fresh.down = false
            fresh.reconnectedAt = Date.now()
            fresh.reconnects++
            for (const l of [...fresh.listeners]) {
              try {
                l()
              } catch {
                // one listener's failure must not keep the others from resyncing
              }
            }
          } else if (s.type === "close") break
        }
      } catch {
        // iterator stopped
      } finally {
        if (connectionWatchers.get(nc) === fresh) connectionWatchers.delete(nc)
      }
    })()
  }
  const mine = w
  mine.handles++
  const own = new Set<() => void>()
  let released = false
  return {
    get down() {
      return mine.down
    },
    get downSince() {
      return mine.downSince
    },
    get reconnectedAt() {
      return mine.reconnectedAt
    },
    get disconnects() {
      return mine.disconnects
    },
    get reconnects() {
      return mine.reconnects
    },
    onReconnect(listener) {
      if (released) return
      own.add(listener)
      mine.listeners.add(listener)
    },
    release() {
      if (released) return
      released = true
      for (const l of own) mine.listeners.delete(l)
      if (--mine.handles > 0) return
      if (connectionWatchers.get(nc) === mine) connectionWatchers.delete(nc)
      mine.stop()
    },
  }
}
