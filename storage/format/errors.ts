/**
 * The closed set of Dataforts errors. Every class has a stable `code` (what callers and
 * tests compare) and a `_tag` (so Effect's `catchTag` works); messages are for humans.
 */
export type ErrorCode =
  | "NOT_FOUND"
  | "INTEGRITY"
  | "TOO_LARGE"
  | "BAD_REF"
  | "BAD_MANIFEST"
  | "UNSAFE_PATH"
  | "CLOSED"
  | "ABORTED"
  | "NO_HOLDER"
  | "TIMEOUT"
  | "STORAGE"
  | "DISK_FULL"
  | "PROTOCOL"
  | "LOCKED"
  | "PERMISSION"

/** Base class: `code` is the contract, `cause` keeps the original error for logs. */
export abstract class DatafortsError extends Error {
  abstract readonly code: ErrorCode
  abstract readonly _tag: string
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
  override get name(): string {
    return this._tag
  }
}

/** The blob (or one of its chunks) is not in the store. */
export class NotFoundError extends DatafortsError {
  readonly code = "NOT_FOUND" as const
  readonly _tag = "NotFoundError" as const
  constructor(readonly hash: string, options?: { cause?: unknown }) {
    super(`not found: ${hash}`, options)
  }
}

/** Bytes read back or received do not hash to the address they were asked for. */
export class IntegrityError extends DatafortsError {
  readonly code = "INTEGRITY" as const
  readonly _tag = "IntegrityError" as const
  constructor(readonly expected: string, readonly actual: string, detail = "") {
    super(`integrity check failed: expected ${expected}, got ${actual}${detail ? ` (${detail})` : ""}`)
  }
}

/** A size limit was exceeded (blob, chunk, manifest, directory). */
export class TooLargeError extends DatafortsError {
  readonly code = "TOO_LARGE" as const
  readonly _tag = "TooLargeError" as const
  constructor(readonly what: string, readonly size: number, readonly limit: number) {
    super(`${what} too large: ${size} > ${limit}`)
  }
}

/** A BlobRef (string or binary) is malformed or not canonical. */
export class BadRefError extends DatafortsError {
  readonly code = "BAD_REF" as const
  readonly _tag = "BadRefError" as const
  constructor(reason: string) {
    super(`bad ref: ${reason}`)
  }
}

/** A manifest or directory manifest failed to decode or violates a rule. */
export class BadManifestError extends DatafortsError {
  readonly code = "BAD_MANIFEST" as const
  readonly _tag = "BadManifestError" as const
  constructor(reason: string) {
    super(`bad manifest: ${reason}`)
  }
}

/** A directory manifest names a path that would escape its destination. */
export class UnsafePathError extends DatafortsError {
  readonly code = "UNSAFE_PATH" as const
  readonly _tag = "UnsafePathError" as const
  constructor(readonly path: string, reason: string) {
    super(`unsafe path ${JSON.stringify(path)}: ${reason}`)
  }
}

/** The store (or the object the call was made on) is closed. */
export class ClosedError extends DatafortsError {
  readonly code = "CLOSED" as const
  readonly _tag = "ClosedError" as const
  constructor(what = "store") {
    super(`${what} is closed`)
  }
}

/** The caller's signal fired. `cause` is the signal's reason. */
export class AbortedError extends DatafortsError {
  readonly code = "ABORTED" as const
  readonly _tag = "AbortedError" as const
  constructor(options?: { cause?: unknown }) {
    super("operation aborted", options)
  }
}

/** No live node holds the requested hash (or all that did failed). */
export class NoHolderError extends DatafortsError {
  readonly code = "NO_HOLDER" as const
  readonly _tag = "NoHolderError" as const
  constructor(readonly hash: string, detail = "") {
    super(`no holder for ${hash}${detail ? `: ${detail}` : ""}`)
  }
}

/** A peer did not answer in time. */
export class TimeoutError extends DatafortsError {
  readonly code = "TIMEOUT" as const
  readonly _tag = "TimeoutError" as const
  constructor(what: string) {
    super(`timed out: ${what}`)
  }
}

/** A peer broke the wire protocol (bad frame, wrong order, lying about sizes). */
export class ProtocolError extends DatafortsError {
  readonly code = "PROTOCOL" as const
  readonly _tag = "ProtocolError" as const
  constructor(reason: string) {
    super(`protocol error: ${reason}`)
  }
}

/** The disk (or quota) is full; nothing partial was made visible. */
export class DiskFullError extends DatafortsError {
  readonly code = "DISK_FULL" as const
  readonly _tag = "DiskFullError" as const
  constructor(options?: { cause?: unknown }) {
    super("disk full", options)
  }
}

/** The backing store failed; `cause` keeps the original error. */
export class StorageError extends DatafortsError {
  readonly code = "STORAGE" as const
  readonly _tag = "StorageError" as const
  constructor(readonly op: string, options?: { cause?: unknown }) {
    super(`storage failure in ${op}`, options)
  }
}

/**
 * The store folder is open in another process (LevelDB's LOCK is held): one process at a
 * time owns a store. `pid` is the holder's, from the pid file it wrote, when known and alive.
 */
export class StoreLockedError extends DatafortsError {
  readonly code = "LOCKED" as const
  readonly _tag = "StoreLockedError" as const
  constructor(readonly dir: string, readonly pid: number | undefined, options?: { cause?: unknown }) {
    super(`store ${dir} is in use by ${pid === undefined ? "another process" : `process ${pid}`}`, options)
  }
}

/**
 * The NATS server refused this user a subscription or a publish Dataforts needs (subject
 * permissions, docs/OPERATIONS.md "NATS permissions"). `operation` says which; `subject` is
 * the subject the server named.
 */
export class PermissionError extends DatafortsError {
  readonly code = "PERMISSION" as const
  readonly _tag = "PermissionError" as const
  constructor(readonly operation: "subscribe" | "publish", readonly subject: string, options?: { cause?: unknown }) {
    super(`the NATS server denies ${operation} to ${JSON.stringify(subject)} for this user`, options)
  }
}

/** Maps a caught abort (DOMException, our AbortedError, signal reason) to AbortedError. */
export function abortedFrom(signal: AbortSignal | undefined, err?: unknown): AbortedError | undefined {
  if (err instanceof AbortedError) return err
  if (signal?.aborted) return new AbortedError({ cause: signal.reason })
  return undefined
}

/** Throws AbortedError when the signal has fired. Cheap; call between chunks. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason })
}
