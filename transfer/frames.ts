/**
 * Binary codec of the transfer subprotocol (docs/PROTOCOL.md). Pure, no I/O. Every message
 * starts with the version byte and a type byte; integers are unsigned big-endian.
 *
 * holder → receiver (on the data subject): DATA, HEAD, FIN, ERR
 * receiver → holder (on `<prefix>.xfer.<node>`): REQ, CREDIT, CANCEL
 */
import {
  ClosedError,
  type DatafortsError,
  NoHolderError,
  NotFoundError,
  ProtocolError,
  StorageError,
  TooLargeError,
} from "../storage/format/errors.ts"
import { toHex } from "../storage/format/hex.ts"
import { DATA_HEADER_BYTES, DATA_MAX_PAYLOAD, ERR_MESSAGE_MAX_BYTES, TRANSFER_VERSION } from "./constants.ts"

/** Type byte of each message. */
export const FrameType = {
  DATA: 0x01,
  HEAD: 0x02,
  FIN: 0x03,
  ERR: 0x04,
  REQ: 0x10,
  CREDIT: 0x11,
  CANCEL: 0x12,
} as const

/** Error codes carried by ERR (one byte on the wire). */
export const ErrCode = {
  NOT_FOUND: 1,
  TOO_LARGE: 2,
  PROTOCOL: 3,
  INTERNAL: 4,
  BUSY: 5,
  CLOSED: 6,
} as const
export type ErrCodeName = keyof typeof ErrCode

export type HolderFrame =
  | { readonly type: "data"; readonly offset: number; readonly payload: Uint8Array }
  | { readonly type: "head"; readonly length: number }
  | { readonly type: "fin"; readonly length: number; readonly hash: Uint8Array }
  | { readonly type: "err"; readonly code: number; readonly message: string }

export type ControlMessage =
  | { readonly type: "req"; readonly hash: Uint8Array; readonly offset: number; readonly credit: number; readonly maxLength: number }
  | { readonly type: "credit"; readonly credit: number; readonly subject: string }
  | { readonly type: "cancel"; readonly subject: string }

const HASH_BYTES = 32
const U32_MAX = 0xffff_ffff
const TE = new TextEncoder()
// ignoreBOM keeps a leading U+FEFF as text, so a decoded message re-encodes to the bytes it came from
const TD = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

function checkU32(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > U32_MAX) throw new RangeError(`${what} out of u32 range: ${n}`)
}

/** The decoder refuses an empty subject ("missing subject"), so the encoders do too. */
function checkSubject(subject: string): void {
  if (subject.length === 0) throw new RangeError("subject must not be empty")
}

function header(size: number, type: number): { out: Uint8Array; view: DataView } {
  const out = new Uint8Array(size)
  out[0] = TRANSFER_VERSION
  out[1] = type
  return { out, view: new DataView(out.buffer) }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0
}

function checkPrelude(b: Uint8Array, minLength: number): number {
  if (b.length < 2) throw new ProtocolError(`message of ${b.length} bytes is too short`)
  if (b[0] !== TRANSFER_VERSION) throw new ProtocolError(`unsupported transfer version ${b[0]}`)
  const type = b[1]!
  if (b.length < minLength) throw new ProtocolError(`type 0x${type.toString(16)} message of ${b.length} bytes is too short`)
  return type
}

/** DATA: the bytes at `offset` (payload ≤ 8102, so the message is ≤ 8108 bytes). */
export function encodeData(offset: number, payload: Uint8Array): Uint8Array {
  checkU32("offset", offset)
  if (payload.length > DATA_MAX_PAYLOAD) throw new RangeError(`payload ${payload.length} > ${DATA_MAX_PAYLOAD}`)
  const { out, view } = header(DATA_HEADER_BYTES + payload.length, FrameType.DATA)
  view.setUint32(2, offset)
  out.set(payload, DATA_HEADER_BYTES)
  return out
}

/**
 * DATA straight from a source window: copies `source[start, end)` behind the header in one
 * allocation (the hot path; nats.js keeps a reference until it flushes, so no reuse).
 */
export function encodeDataFrom(offset: number, source: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(DATA_HEADER_BYTES + end - start)
  out[0] = TRANSFER_VERSION
  out[1] = FrameType.DATA
  out[2] = offset >>> 24
  out[3] = (offset >>> 16) & 0xff
  out[4] = (offset >>> 8) & 0xff
  out[5] = offset & 0xff
  out.set(source.subarray(start, end), DATA_HEADER_BYTES)
  return out
}

/** HEAD: the holder's total length of the chunk, sent first in every answer. */
export function encodeHead(length: number): Uint8Array {
  checkU32("length", length)
  const { out, view } = header(6, FrameType.HEAD)
  view.setUint32(2, length)
  return out
}

/** FIN: total length and the 32-byte hash echo; no DATA follows. */
export function encodeFin(length: number, hash: Uint8Array): Uint8Array {
  checkU32("length", length)
  if (hash.length !== HASH_BYTES) throw new RangeError("hash must be 32 bytes")
  const { out, view } = header(6 + HASH_BYTES, FrameType.FIN)
  view.setUint32(2, length)
  out.set(hash, 6)
  return out
}

/** ERR: a one-byte code (see {@link ErrCode}) and a UTF-8 message (≤ 1024 bytes). */
export function encodeErr(code: number, message: string): Uint8Array {
  if (!Number.isInteger(code) || code < 0 || code > 255) throw new RangeError(`err code ${code}`)
  let text = TE.encode(message)
  if (text.length > ERR_MESSAGE_MAX_BYTES) text = TE.encode(message.slice(0, ERR_MESSAGE_MAX_BYTES / 4))
  const { out } = header(3 + text.length, FrameType.ERR)
  out[2] = code
  out.set(text, 3)
  return out
}

/** REQ: send `hash` from `offset`; `credit` is the first absolute byte limit; the reply subject is the data subject. */
export function encodeReq(hash: Uint8Array, offset: number, credit: number, maxLength: number): Uint8Array {
  if (hash.length !== HASH_BYTES) throw new RangeError("hash must be 32 bytes")
  checkU32("offset", offset)
  checkU32("credit", credit)
  checkU32("maxLength", maxLength)
  const { out, view } = header(2 + HASH_BYTES + 12, FrameType.REQ)
  out.set(hash, 2)
  view.setUint32(34, offset)
  view.setUint32(38, credit)
  view.setUint32(42, maxLength)
  return out
}

/** CREDIT: the holder may send DATA up to this absolute offset (cumulative, never regresses). */
export function encodeCredit(credit: number, subject: string): Uint8Array {
  checkU32("credit", credit)
  checkSubject(subject)
  const s = TE.encode(subject)
  const { out, view } = header(6 + s.length, FrameType.CREDIT)
  view.setUint32(2, credit)
  out.set(s, 6)
  return out
}

/** CANCEL: stop the transfer answering on `subject` and release it. */
export function encodeCancel(subject: string): Uint8Array {
  checkSubject(subject)
  const s = TE.encode(subject)
  const { out } = header(2 + s.length, FrameType.CANCEL)
  out.set(s, 2)
  return out
}

/** Decodes a holder → receiver message; throws ProtocolError on anything malformed. */
export function decodeHolderFrame(b: Uint8Array): HolderFrame {
  const type = checkPrelude(b, 2)
  switch (type) {
    case FrameType.DATA:
      if (b.length < DATA_HEADER_BYTES) throw new ProtocolError("DATA frame too short")
      if (b.length - DATA_HEADER_BYTES > DATA_MAX_PAYLOAD) throw new ProtocolError(`DATA payload ${b.length - DATA_HEADER_BYTES} > ${DATA_MAX_PAYLOAD}`)
      return { type: "data", offset: u32(b, 2), payload: b.subarray(DATA_HEADER_BYTES) }
    case FrameType.HEAD:
      if (b.length !== 6) throw new ProtocolError(`HEAD frame of ${b.length} bytes`)
      return { type: "head", length: u32(b, 2) }
    case FrameType.FIN:
      if (b.length !== 6 + HASH_BYTES) throw new ProtocolError(`FIN frame of ${b.length} bytes`)
      return { type: "fin", length: u32(b, 2), hash: b.slice(6) }
    case FrameType.ERR: {
      if (b.length < 3 || b.length > 3 + ERR_MESSAGE_MAX_BYTES) throw new ProtocolError(`ERR frame of ${b.length} bytes`)
      let message: string
      try {
        message = TD.decode(b.subarray(3))
      } catch {
        throw new ProtocolError("ERR message is not UTF-8")
      }
      return { type: "err", code: b[2]!, message }
    }
    default:
      throw new ProtocolError(`unknown holder frame type 0x${type.toString(16)}`)
  }
}

function decodeSubject(b: Uint8Array, at: number): string {
  if (b.length <= at) throw new ProtocolError("missing subject")
  try {
    return TD.decode(b.subarray(at))
  } catch {
    throw new ProtocolError("subject is not UTF-8")
  }
}

/** Decodes a receiver → holder message; throws ProtocolError on anything malformed. */
export function decodeControl(b: Uint8Array): ControlMessage {
  const type = checkPrelude(b, 2)
  switch (type) {
    case FrameType.REQ:
      if (b.length !== 46) throw new ProtocolError(`REQ of ${b.length} bytes`)
      return { type: "req", hash: b.slice(2, 34), offset: u32(b, 34), credit: u32(b, 38), maxLength: u32(b, 42) }
    case FrameType.CREDIT:
      if (b.length < 7) throw new ProtocolError("CREDIT too short")
      return { type: "credit", credit: u32(b, 2), subject: decodeSubject(b, 6) }
    case FrameType.CANCEL:
      return { type: "cancel", subject: decodeSubject(b, 2) }
    default:
      throw new ProtocolError(`unknown control type 0x${type.toString(16)}`)
  }
}

/** The ERR code a holder sends for a failure (anything unexpected is INTERNAL). */
export function errCodeOf(err: unknown): number {
  const code = (err as DatafortsError | undefined)?.code
  switch (code) {
    case "NOT_FOUND":
      return ErrCode.NOT_FOUND
    case "TOO_LARGE":
      return ErrCode.TOO_LARGE
    case "PROTOCOL":
      return ErrCode.PROTOCOL
    case "CLOSED":
      return ErrCode.CLOSED
    default:
      return ErrCode.INTERNAL
  }
}

/** The typed error a receiver records for an ERR frame from `holder` about `hash`. */
export function errorFromErr(code: number, message: string, hash: Uint8Array, holder: string): DatafortsError {
  const hex = toHex(hash)
  switch (code) {
    case ErrCode.NOT_FOUND:
      return new NotFoundError(hex)
    case ErrCode.TOO_LARGE:
      return new TooLargeError(`chunk at ${holder}`, 0, 0)
    case ErrCode.PROTOCOL:
      return new ProtocolError(`${holder} rejected the request: ${message}`)
    case ErrCode.BUSY:
      return new NoHolderError(hex, `${holder} is busy`)
    case ErrCode.CLOSED:
      return new ClosedError(`holder ${holder}`)
    default:
      return new StorageError(`holder ${holder}: ${message}`)
  }
}
