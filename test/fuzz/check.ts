import { DatafortsError, type ErrorCode } from "../../storage/format/errors.ts"
import type { Target } from "./targets.ts"

/**
 * The three properties every decoder must hold, checked on one input. A broken property
 * throws a FuzzFailure (fast-check then shrinks and reports seed and path); anything else
 * the decoder throws is itself a failure.
 */

/** Every code a DatafortsError may carry (errors.ts; a Record, so a new code must be listed here): a code outside it is a bug too. */
const CODES: Record<ErrorCode, true> = {
  NOT_FOUND: true, INTEGRITY: true, TOO_LARGE: true, BAD_REF: true, BAD_MANIFEST: true, UNSAFE_PATH: true, CLOSED: true,
  ABORTED: true, NO_HOLDER: true, TIMEOUT: true, STORAGE: true, DISK_FULL: true, PROTOCOL: true, LOCKED: true, PERMISSION: true,
}
export const ERROR_CODES: ReadonlySet<string> = new Set(Object.keys(CODES))

/**
 * One decode must use less CPU than this. CPU time of this process, not wall time, so other
 * processes on a busy box do not count; generous for a GC pause, while a quadratic case on
 * our inputs (up to ~70 KB) takes far longer.
 */
export const SLOW_CASE_MS = 1000

export class FuzzFailure extends Error {
  override readonly name = "FuzzFailure"
}

/** What a target's decoder did with one input (a value, or the code it refused with; "MALFORMED": a fold decoder's undefined) and the CPU ms it used. */
export type Outcome = { readonly accepted: true; readonly ms: number } | { readonly accepted: false; readonly code: string; readonly ms: number }

/**
 * Equality for decoded values: structural, Uint8Arrays by content, numbers by `===` (so a
 * NaN is never equal to itself, and -0 equals 0: JSON cannot tell them apart on the way back).
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (typeof a === "number" || typeof b === "number") return a === b
  if (a === b) return true
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  }
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  const rb = b as Record<string, unknown>
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], rb[k]))
}

const show = (b: Uint8Array): string =>
  b.length <= 96 ? Buffer.from(b).toString("hex") : `${Buffer.from(b.subarray(0, 96)).toString("hex")}… (${b.length} bytes)`

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}

/** Runs the decoder once: value or typed refusal; an untyped throw or a slow case is a failure. */
function decodeOnce<V>(target: Target<V>, input: Uint8Array): { value: V | undefined; outcome: Outcome } {
  const cpu0 = process.cpuUsage()
  let value: V | undefined
  let code: string | undefined
  try {
    value = target.decode(input)
    if (value === undefined) code = "MALFORMED"
  } catch (e) {
    if (!(e instanceof DatafortsError)) {
      throw new FuzzFailure(`${target.name}: decode threw ${String(e)} (not a DatafortsError) on ${show(input)}`)
    }
    if (!ERROR_CODES.has(e.code) || !target.codes.includes(e.code)) {
      throw new FuzzFailure(`${target.name}: decode threw code ${e.code}, expected one of ${target.codes.join(", ")} on ${show(input)}`)
    }
    code = e.code
  }
  const used = process.cpuUsage(cpu0)
  const ms = (used.user + used.system) / 1000
  if (ms > SLOW_CASE_MS) throw new FuzzFailure(`${target.name}: decode used ${ms.toFixed(0)} ms of CPU on ${show(input)}`)
  return code === undefined ? { value, outcome: { accepted: true, ms } } : { value: undefined, outcome: { accepted: false, code, ms } }
}

/** Round trip: an honest encoding decodes, to the value that was encoded. */
export function checkValid<V>(target: Target<V>, v: V): Outcome {
  const bytes = target.encode(v)
  const { value, outcome } = decodeOnce(target, bytes)
  if (!outcome.accepted) throw new FuzzFailure(`${target.name}: refused its own encoding (${outcome.code}) of ${show(bytes)}`)
  if (!deepEqual(target.view(value as V), target.view(v))) {
    throw new FuzzFailure(`${target.name}: decode(encode(v)) differs from v for ${show(bytes)}`)
  }
  return outcome
}

/**
 * Safety and canonical form on untrusted bytes: a typed refusal, or a value whose encoding
 * is the input itself (binary formats) or which re-encodes and re-decodes to itself (JSON).
 */
export function checkBytes<V>(target: Target<V>, input: Uint8Array): Outcome {
  const { value, outcome } = decodeOnce(target, input)
  if (!outcome.accepted) return outcome
  const v = value as V
  const why = target.invariant?.(v)
  if (why !== undefined) throw new FuzzFailure(`${target.name}: accepted a value that breaks its rules (${why}) from ${show(input)}`)
  let again: Uint8Array
  try {
    again = target.encode(v)
  } catch (e) {
    throw new FuzzFailure(`${target.name}: accepted ${show(input)} but cannot encode the result: ${String(e)}`)
  }
  if (target.canonical === "bytes") {
    if (!sameBytes(again, input)) throw new FuzzFailure(`${target.name}: accepted non-canonical ${show(input)}; canonical is ${show(again)}`)
  } else {
    const back = decodeOnce(target, again)
    if (!back.outcome.accepted) throw new FuzzFailure(`${target.name}: accepted ${show(input)}, refuses its re-encoding ${show(again)}`)
    if (!deepEqual(target.view(back.value as V), target.view(v))) {
      throw new FuzzFailure(`${target.name}: accepted ${show(input)}, its re-encoding ${show(again)} decodes to another value`)
    }
  }
  return outcome
}
