import type { NatsConnection, Subscription } from "@nats-io/nats-core"
import type { FoldBus } from "../../folds/bus.ts"

/** A FoldBus that also reports how many subscriptions it holds open (leak tests). */
export interface CountingFoldBus extends FoldBus {
  activeSubscriptions(): number
}

/**
 * Adapts a nats.js v3 connection to the folds' bus port. The plugin owns the production
 * copy; this one lives in test support so the folds' integration tests run against a real
 * server without folds/ importing NATS.
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
