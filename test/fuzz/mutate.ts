import fc from "fast-check"

/**
 * Mutations of valid encodings: most interesting inputs are near-misses of what an encoder
 * writes (one flipped bit in a length, a cut-off tail), which random bytes almost never hit.
 * Positions are drawn as plain numbers and taken modulo the input's length, so one mutation
 * list applies to any input and shrinks on its own.
 */
export type ByteMutation =
  | { readonly op: "flip"; readonly at: number; readonly bit: number }
  | { readonly op: "set"; readonly at: number; readonly value: number }
  | { readonly op: "truncate"; readonly at: number }
  | { readonly op: "extend"; readonly bytes: Uint8Array }
  | { readonly op: "splice"; readonly at: number; readonly remove: number; readonly insert: Uint8Array }
  | { readonly op: "repeat"; readonly at: number; readonly length: number }
  | { readonly op: "field"; readonly at: number; readonly width: 1 | 2 | 4 | 8; readonly value: bigint }

/** Values a length or count field is most likely to be mishandled at. */
const EXTREMES: readonly bigint[] = [
  0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn,
  0x1_0000_0000n, 0x1f_ffff_ffff_ffffn, 0x20_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn, 0xffff_ffff_ffff_ffffn,
]

const smallBytes = fc.uint8Array({ maxLength: 16 })

export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("extend" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("splice" as const), at: fc.nat(), remove: fc.nat({ max: 40 }), insert: smallBytes }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("repeat" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("field" as const),
      at: fc.nat(),
      width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
      value: fc.oneof(fc.constantFrom(...EXTREMES), fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn })),
    }),
  },
)

/** Applies `ops` in order to a copy of `input` (the input is never changed). */
export function applyMutations(input: Uint8Array, ops: readonly ByteMutation[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input)
  for (const m of ops) {
    const n = b.length
    switch (m.op) {
      case "flip":
        if (n > 0) b[m.at % n]! ^= 1 << m.bit
        break
      case "set":
        if (n > 0) b[m.at % n] = m.value
        break
      case "truncate":
        b = b.slice(0, n === 0 ? 0 : m.at % n)
        break
      case "extend":
        b = concat(b, m.bytes)
        break
      case "splice": {
        const at = m.at % (n + 1)
        b = concat(b.subarray(0, at), m.insert, b.subarray(Math.min(n, at + m.remove)))
        break
      }
      case "repeat": {
        if (n === 0) break
        const at = m.at % n
        b = concat(b.subarray(0, at), b.subarray(at, at + m.length), b.subarray(at))
        break
      }
      case "field": {
        // a big-endian field of `width` bytes (every integer on our wires is big-endian)
        if (n < m.width) break
        const at = m.at % (n - m.width + 1)
        let v = m.value & ((1n << BigInt(m.width * 8)) - 1n)
        for (let i = m.width - 1; i >= 0; i--) {
          b[at + i] = Number(v & 0xffn)
          v >>= 8n
        }
        break
      }
    }
  }
  return b
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0))
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

/** Mutated encodings of valid values: one to four mutations each. */
export function mutatedBytes<V>(valid: fc.Arbitrary<V>, encode: (v: V) => Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(valid, fc.array(byteMutation, { minLength: 1, maxLength: 4 }))
    .map(([v, ops]) => applyMutations(encode(v), ops))
}

/**
 * JSON text a well-meaning JSON encoder never writes for a valid value but a peer may send:
 * numbers out of range (1e400 parses to Infinity), negative zero, fractions and unsafe
 * integers where ints are meant, wrong types, lone surrogates.
 */
const RAW_JSON: readonly string[] = [
  "1e400", "-1e400", "-0", "0", "-1", "1.5", "0.1", "1e21", "9007199254740991", "9007199254740992", "9007199254740993",
  "-9007199254740993", "1e-400", "null", "true", "false", '""', '"x"', '"\\ud800"', '"\\u0000"', "[]", "{}", "[1]",
  '{"__proto__":1}', '"1"', '"NaN"', "4294967296", "18446744073709551616",
]

export type JsonMutation =
  | { readonly op: "replace"; readonly path: number; readonly raw: string }
  | { readonly op: "value"; readonly path: number; readonly value: unknown }
  | { readonly op: "drop"; readonly path: number }
  | { readonly op: "extra"; readonly path: number; readonly key: string; readonly value: unknown }

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("replace" as const), path: fc.nat(), raw: fc.constantFrom(...RAW_JSON) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("value" as const), path: fc.nat(), value: fc.jsonValue({ maxDepth: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("drop" as const), path: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("extra" as const),
      path: fc.nat(),
      key: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom("__proto__", "constructor", "data", "seq", "id")),
      value: fc.jsonValue({ maxDepth: 1 }),
    }),
  },
)

type Slot = { parent: Record<string, unknown> | unknown[]; key: string | number }

/** Every place in a JSON value a mutation can aim at (containers and leaves). */
function slots(v: unknown, out: Slot[] = []): Slot[] {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push({ parent: v, key: i })
      slots(x, out)
    })
  } else if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) {
      out.push({ parent: v as Record<string, unknown>, key: k })
      slots((v as Record<string, unknown>)[k], out)
    }
  }
  return out
}

// plain ASCII: JSON.stringify would escape control characters
const SENTINEL = "~~raw~~"

/** Applies JSON mutations to a deep copy of `value` and serializes it (raw splices go in as text). */
export function mutateJson(value: unknown, ops: readonly JsonMutation[]): string {
  const root: { v: unknown } = { v: JSON.parse(JSON.stringify(value)) }
  const raws: string[] = []
  for (const m of ops) {
    const all: Slot[] = [{ parent: root as unknown as Record<string, unknown>, key: "v" }, ...slots(root.v)]
    const s = all[m.path % all.length]!
    const parent = s.parent as Record<string | number, unknown>
    switch (m.op) {
      case "replace":
        parent[s.key] = `${SENTINEL}${raws.length}~~`
        raws.push(m.raw)
        break
      case "value":
        parent[s.key] = m.value
        break
      case "drop":
        if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1)
        else if (s.parent !== (root as unknown)) delete parent[s.key]
        break
      case "extra": {
        const target = parent[s.key]
        if (target !== null && typeof target === "object" && !Array.isArray(target)) {
          // defineProperty: "__proto__" must become an own key, as JSON.parse makes it
          Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true })
        }
        break
      }
    }
  }
  return JSON.stringify(root.v).replace(new RegExp(`"${SENTINEL}(\\d+)~~"`, "g"), (_, i: string) => raws[Number(i)]!)
}

/** Structurally mutated JSON of valid values, as UTF-8 bytes. */
export function mutatedJson<V>(valid: fc.Arbitrary<V>, toJson: (v: V) => unknown = (v) => v): fc.Arbitrary<Uint8Array> {
  const te = new TextEncoder()
  return fc.tuple(valid, fc.array(jsonMutation, { minLength: 1, maxLength: 3 })).map(([v, ops]) => te.encode(mutateJson(toJson(v), ops)))
}
