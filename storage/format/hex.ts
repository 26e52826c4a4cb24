/** Lower-case hex of bytes; the only textual hash form that crosses a boundary. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

export function toHex(bytes: Uint8Array): string {
  let s = ""
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!]
  return s
}

const HEX_RE = /^[0-9a-f]*$/

/** Parses lower-case hex; returns undefined for anything else (odd length, upper case, junk). */
export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !HEX_RE.test(hex)) return undefined
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** True when `s` is a 64-character lower-case hex BLAKE3 digest. */
export function isHashHex(s: string): boolean {
  return s.length === 64 && HEX_RE.test(s)
}
