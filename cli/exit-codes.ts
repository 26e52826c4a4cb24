import { DatafortsError, type ErrorCode } from "../plugin/index.ts"

/** Distinct exit codes per failure kind, so scripts can branch without parsing messages. */
export const EXIT: Record<ErrorCode | "OK" | "USAGE" | "INTERNAL", number> = {
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
}

export class UsageError extends Error {}

/** Prints a clear one-line message for an error and returns its exit code. */
export function reportError(err: unknown, json: boolean): number {
  if (err instanceof UsageError) {
    process.stderr.write(`usage: ${err.message}\n`)
    return EXIT.USAGE
  }
  if (err instanceof DatafortsError) {
    if (json) process.stderr.write(`${JSON.stringify({ error: err.code, message: err.message })}\n`)
    else process.stderr.write(`error (${err.code}): ${err.message}\n`)
    return EXIT[err.code]
  }
  const e = err as NodeJS.ErrnoException
  if (e?.code === "ENOENT") {
    process.stderr.write(`error: no such file: ${e.path ?? ""}\n`)
    return EXIT.NOT_FOUND
  }
  process.stderr.write(`error: ${e?.stack ?? String(err)}\n`)
  return EXIT.INTERNAL
}
