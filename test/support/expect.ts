/** The `code` a call (or promise) fails with, or undefined when it succeeds: tests compare codes, never messages. */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === "function" ? p() : p)
  } catch (e) {
    return (e as { code?: string }).code
  }
  return undefined
}

/** Synchronous `codeOf` for pure functions (codecs). */
export function codeOfSync(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    return (e as { code?: string }).code
  }
  return undefined
}

/** Byte equality without vitest's deep diff (too slow on MiBs). */
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
