/**
 * What a NATS server's permission refusals look like through nats.js v3: the server answers
 * a denied SUB or PUB with `-ERR 'Permissions Violation for Subscription|Publish to "…"'`;
 * nats.js turns it into a `PermissionViolationError` and reports it as an `error` status
 * (and, for a subscription, ends it). It never fails the publish call itself, so whoever
 * needs to know watches the status. Duck-typed: the caller's connection may come from
 * another copy of nats-core, where `instanceof` would say no.
 */
import { PermissionError } from "../storage/format/errors.ts"

/** One refusal: which operation, on which subject. */
export interface Denial {
  readonly operation: "subscribe" | "publish"
  readonly subject: string
}

/** The refusal a `nc.status()` event reports, or undefined for any other status. */
export function denialOf(status: unknown): Denial | undefined {
  const s = status as { type?: unknown; error?: { name?: unknown; operation?: unknown; subject?: unknown } } | undefined
  const e = s?.type === "error" ? s.error : undefined
  if (e?.name !== "PermissionViolationError" || typeof e.subject !== "string") return undefined
  return { operation: e.operation === "subscription" ? "subscribe" : "publish", subject: e.subject }
}

/** The typed error for a refusal. */
export function permissionError(d: Denial): PermissionError {
  return new PermissionError(d.operation, d.subject)
}

/**
 * True when a refusal dooms a receiver's fetches: its data subscription (`wildcard`), or a
 * publish to a holder's subject `<prefix>.xfer.<node>` (a REQ, CREDIT or CANCEL). Not a
 * refused publish to a data subject `<prefix>.xfer.in.…`: that is this connection's holder
 * answering someone else.
 */
export function refusesFetch(d: Denial, prefix: string, wildcard: string): boolean {
  if (d.operation === "subscribe") return d.subject === wildcard
  const head = `${prefix}.xfer.`
  return d.subject.startsWith(head) && !d.subject.includes(".", head.length)
}
