// the error classes straight from their pure module (no dependencies): the CLIs load this
// before anything heavy, so usage errors answer fast; the classes are the ones plugin/index.ts exports
import { DatafortsError, type ErrorCode } from "../storage/format/errors.ts"

/** Distinct exit codes per failure kind, so scripts can branch without parsing messages. */
export const EXIT: Record<ErrorCode | "OK" | "USAGE" | "INTERNAL" | "NO_SERVER" | "NO_SUCH_FILE", number> = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  BAD_REF: 3,
  NOT_FOUND: 4,
  INTEGRITY: 5,
  TOO_LARGE: 6,
  BAD_MANIFEST: 7,
  UNSAFE_PATH: 8,
  NO_HOLDER: 9,
  TIMEOUT: 10,
  ABORTED: 11,
  CLOSED: 12,
  STORAGE: 13,
  DISK_FULL: 14,
  PROTOCOL: 15,
  /** net-mesh: the NATS server could not be reached. */
  NO_SERVER: 16,
  /** The store is open in another process (StoreLockedError). */
  LOCKED: 17,
  /** A file or folder named on the command line does not exist (the input of put, the folder of --out). */
  NO_SUCH_FILE: 18,
  /** The NATS server denies a subject this command needs (PermissionError). */
  PERMISSION: 19,
}

/** A mistake on the command line: one line on stderr, exit 2. `see` is where the help is. */
export class UsageError extends Error {
  constructor(message: string, readonly see?: string) {
    super(message)
  }
}

/** A path named on the command line does not exist (exit 18). */
export class NoSuchFileError extends Error {
  constructor(readonly path: string, what = "no such file") {
    super(`${what}: ${path}`)
  }
}

/**
 * `net-blob get ref | head -c 10`: once the reader closes the pipe, stdout fails with EPIPE.
 * That is the reader's choice, not an error: `stop` is called (the command aborts and closes
 * its store cleanly) and the returned function then tells the caller to exit 0 quietly.
 */
export function watchBrokenPipe(stop: () => void): () => boolean {
  let broken = false
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err
    broken = true
    stop()
  })
  return () => broken
}

/** Prints a clear one-line message for an error and returns its exit code. */
export function reportError(err: unknown, json: boolean, prog = "net-blob"): number {
  const line = (code: string, message: string) =>
    process.stderr.write(json ? `${JSON.stringify({ error: code, message })}\n` : `${prog}: ${message.replace(/\s*\n\s*/g, " ")}\n`)
  if (err instanceof UsageError) {
    // usage errors are for a human at the prompt: always text
    process.stderr.write(`${prog}: ${err.message} (see ${err.see ?? `${prog} --help`})\n`)
    return EXIT.USAGE
  }
  if (err instanceof NoSuchFileError) {
    line("NO_SUCH_FILE", err.message)
    return EXIT.NO_SUCH_FILE
  }
  if (err instanceof DatafortsError) {
    if (json) line(err.code, err.message)
    else process.stderr.write(`${prog}: error (${err.code}): ${err.message}\n`)
    return EXIT[err.code]
  }
  const e = err as NodeJS.ErrnoException
  if (e?.code === "ENOENT") {
    line("NO_SUCH_FILE", `no such file or directory: ${e.path ?? ""}`)
    return EXIT.NO_SUCH_FILE
  }
  if (typeof e?.code === "string" && typeof e.syscall === "string") {
    // another system error (EACCES, EISDIR, ...): the message names the call and the path
    line(e.code, e.message)
    return EXIT.INTERNAL
  }
  process.stderr.write(`${prog}: internal error: ${e?.stack ?? String(err)}\n`)
  return EXIT.INTERNAL
}
