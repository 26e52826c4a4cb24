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
    activeSubscriptions: () => [...open].filter((s) => !s.isClosed()).length,
  }
}
