import type { NatsConnection, Subscription } from "@nats-io/nats-core"
import type { FoldBus } from "../folds/bus.ts"

/** A FoldBus that also reports how many subscriptions it holds open (leak checks, metrics). */
export interface CountingFoldBus extends FoldBus {
  activeSubscriptions(): number
}

/**
 * Adapts a nats.js v3 connection to the folds' bus port, so folds/ never imports NATS.
 * Subscriptions opened here are the folds' own; the caller's connection stays theirs.
 */
export function natsFoldBus(nc: NatsConnection): CountingFoldBus {
  const open = new Set<Subscription>()
  return {
    publish(subject, data) {
      nc.publish(subject, data)
    },
    subscribe(subject, onMessage) {
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
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
    activeSubscriptions: () => [...open].filter((s) => !s.isClosed()).length,
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
