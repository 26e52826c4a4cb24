/**
 * Subjects of the transfer subprotocol (docs/PROTOCOL.md §Subjects). Node ids and prefixes
 * are single or dotted NATS tokens without wildcards.
 */

/** Where a holder serves REQ, CREDIT and CANCEL: `<prefix>.xfer.<node>`. */
export function holderSubject(prefix: string, node: string): string {
  return `${prefix}.xfer.${node}`
}

/** The receiver's wildcard data subscription: `<prefix>.xfer.in.<receiverId>.*`. */
export function receiverWildcard(prefix: string, receiverId: string): string {
  return `${prefix}.xfer.in.${receiverId}.*`
}

/** The receiver an attempt subject belongs to: the subject without its attempt token. */
export function readerOfAttempt(subject: string): string {
  return subject.slice(0, subject.lastIndexOf("."))
}

/** One attempt's data subject: `<prefix>.xfer.in.<receiverId>.<attempt>`. */
export function attemptSubject(prefix: string, receiverId: string, attempt: number): string {
  return `${prefix}.xfer.in.${receiverId}.${attempt.toString(36)}`
}
