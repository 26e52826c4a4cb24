/**
 * The operator's switch for our native parts: `DATAFORTS_NO_NATIVE=1` (or `all`) turns every
 * one off; a comma list (`rename-exchange,malloc-tune,blake-hash`) turns those off. For hosts
 * that want none of them, and for the tests that force each fallback. Pure: the caller may pass
 * the value; by default it is read from the process environment where there is one.
 */
export type NativePart = "rename-exchange" | "malloc-tune" | "blake-hash"

const fromEnvironment = (): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.DATAFORTS_NO_NATIVE

export function nativeDisabled(part: NativePart, value: string | undefined = fromEnvironment()): boolean {
  if (value === undefined || value === "" || value === "0") return false
  if (value === "1" || value === "all") return true
  return value.split(",").map((s) => s.trim()).includes(part)
}
