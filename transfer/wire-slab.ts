/**
 * A read window laid out as the NATS client protocol will carry it: one `PUB` record per
 * DATA frame, back to back, so a run of whole frames goes to the socket as ONE write of a
 * slab slice, with no per-frame publish call, header string, queue entry or copy.
 *
 *   PUB <subject> <frame bytes>\r\n <frame: 6-byte DATA header + payload> \r\n
 *
 * The frames are the same DATA frames (≤ 8108 bytes) a per-frame publish would send; only
 * the way they are written changes. Payload slots are left for a scatter read (`readv`)
 * to fill, so the source's bytes land in place.
 */
import { DATA_HEADER_BYTES, DATA_MAX_PAYLOAD, FRAME_MAX_BYTES, TRANSFER_VERSION } from "./constants.ts"
import { FrameType } from "./frames.ts"

/** Longest subject laid out in a pooled slab (ours are ~40 bytes); longer ones get a fresh slab. */
export const WIRE_SUBJECT_MAX = 128

const CR = 13
const LF = 10

/** One window's records: record `i` is `slab[recordStarts[i], recordStarts[i + 1])`. */
export interface WireSlab {
  readonly slab: Uint8Array
  /** Payload slot of each frame, in order (fill these). */
  readonly payloads: Uint8Array[]
  /** Where each record (its PUB line) begins; one extra entry marks the end of the last. */
  readonly recordStarts: Int32Array
  /** Where each frame (its DATA header) begins. */
  readonly frameStarts: Int32Array
}

/** Bytes of the PUB line for a subject of `subjectLength` bytes and a frame of `frameBytes`. */
function lineBytes(subjectLength: number, frameBytes: number): number {
  return 4 + subjectLength + 1 + String(frameBytes).length + 2
}

/** Slab bytes needed for `frames` full frames to a subject of `subjectLength` bytes. */
export function wireSlabBytes(frames: number, subjectLength: number): number {
  return frames * (lineBytes(subjectLength, FRAME_MAX_BYTES) + FRAME_MAX_BYTES + 2)
}

/**
 * True when the UTF-8 `subject` may be written into the protocol stream as it is: no spaces
 * or control bytes (what a NATS server accepted as a reply subject never has).
 */
export function isWireSubject(subject: Uint8Array): boolean {
  if (subject.length === 0) return false
  for (let i = 0; i < subject.length; i++) {
    const c = subject[i]!
    if (c <= 0x20 || c === 0x7f) return false
  }
  return true
}

/**
 * Lays out the DATA frames for `length` bytes at chunk offset `start`, addressed to the UTF-8
 * `subject` (see {@link isWireSubject}), in `into` when it is large enough, else in a fresh
 * buffer (`slab` is that whole buffer). PUB lines, DATA headers and CRLFs are written;
 * payload slots are left to fill.
 */
export function layoutWireSlab(subject: Uint8Array, start: number, length: number, into?: Uint8Array): WireSlab {
  if (!isWireSubject(subject)) throw new RangeError("subject has spaces or control bytes")
  if (start + length > 0xffff_ffff) throw new RangeError(`offset ${start + length} beyond u32`)
  const frames = Math.ceil(length / DATA_MAX_PAYLOAD)
  const needed = wireSlabBytes(frames, subject.length)
  const slab = into !== undefined && into.length >= needed ? into : new Uint8Array(needed)
  const payloads: Uint8Array[] = new Array(frames)
  const recordStarts = new Int32Array(frames + 1)
  const frameStarts = new Int32Array(frames)
  let at = 0
  for (let i = 0, src = 0; i < frames; i++) {
    const n = Math.min(DATA_MAX_PAYLOAD, length - src)
    const off = start + src
    recordStarts[i] = at
    at = writeLine(slab, at, subject, DATA_HEADER_BYTES + n)
    frameStarts[i] = at
    slab[at] = TRANSFER_VERSION
    slab[at + 1] = FrameType.DATA
    slab[at + 2] = off >>> 24
    slab[at + 3] = (off >>> 16) & 0xff
    slab[at + 4] = (off >>> 8) & 0xff
    slab[at + 5] = off & 0xff
    at += DATA_HEADER_BYTES
    payloads[i] = slab.subarray(at, at + n)
    at += n
    slab[at++] = CR
    slab[at++] = LF
    src += n
  }
  recordStarts[frames] = at
  return { slab, payloads, recordStarts, frameStarts }
}

/** Writes `PUB <subject> <size>\r\n` at `at`; returns the position after it. */
function writeLine(slab: Uint8Array, at: number, subject: Uint8Array, size: number): number {
  slab[at++] = 0x50 // P
  slab[at++] = 0x55 // U
  slab[at++] = 0x42 // B
  slab[at++] = 0x20
  slab.set(subject, at)
  at += subject.length
  slab[at++] = 0x20
  const digits = String(size)
  for (let i = 0; i < digits.length; i++) slab[at++] = digits.charCodeAt(i)
  slab[at++] = CR
  slab[at++] = LF
  return at
}
