import { constants } from "node:fs"
import type { FileHandle } from "node:fs/promises"

/**
 * Writing a file around the page cache (O_DIRECT), for chunks that arrived from a peer and
 * are not about to be read back. A buffered write makes the kernel allocate a fresh page-cache
 * page per 4 KiB and copy into it; on a VM whose free memory is handed back to the host that
 * first touch costs 2–3 CPU-s per GiB (measured, docs/PERFORMANCE.md), more than the whole
 * network receive. A direct write DMAs from our buffer and costs ~0.1 CPU-s per GiB.
 *
 * O_DIRECT needs the buffer address, file offset and length aligned to the device's logical
 * block. Node's ArrayBuffers come from malloc (16-byte aligned); a WebAssembly.Memory's
 * backing store is mapped page-aligned. Bytes in such memory ({@link alignedBytes}) are
 * written as they are; others are copied in slices through staging carved from one. The
 * last block is zero-padded and the file truncated to the real length afterwards.
 *
 * Where no WebAssembly.Memory can be had (`node --jitless` has no `WebAssembly`; a small
 * `ulimit -v` refuses the ~10 GiB of address space V8 reserves per Memory), {@link alignedBytes}
 * gives ordinary memory and {@link AlignedStaging.aligned} is false: chunks are then written
 * buffered (the file chunk store checks before it opens a file with O_DIRECT).
 */

/** Offsets, lengths and staging addresses are multiples of this (covers 512 B and 4 KiB devices). */
export const DIRECT_ALIGN = 4096
/** Bytes copied and written per direct write call. */
export const DIRECT_SLICE_BYTES = 4 << 20
/** Staging slices (one per concurrent direct write; libuv runs four fs calls at a time). */
const STAGING_SLICES = 4
const WASM_PAGE = 65536

/** The one WebAssembly API used here (its value types are in lib "dom", which this project does not load). */
type WasmMemory = new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer }

/**
 * WebAssembly.Memory, looked up when first needed (never at import: under `node --jitless`
 * `WebAssembly` is undefined), or undefined once one could not be made. A failed Memory is not
 * tried again: V8 runs several full GCs before it gives up (~20 ms each time, measured).
 */
let wasmMemory: WasmMemory | undefined | null = null
const wasmMemoryCtor = (): WasmMemory | undefined =>
  wasmMemory === null ? (wasmMemory = (globalThis as { WebAssembly?: { Memory?: WasmMemory } }).WebAssembly?.Memory) : wasmMemory

/** The open flag, or undefined on a platform without O_DIRECT. */
export const O_DIRECT: number | undefined = (constants as { O_DIRECT?: number }).O_DIRECT

/** Aligned staging slices, lent one per in-flight write; more writers wait their turn. */
export class AlignedStaging {
  /** Whether the slices start on page boundaries; when not (no WebAssembly.Memory), direct writes cannot be staged. */
  readonly aligned: boolean
  readonly #free: Uint8Array[] = []
  readonly #waiting: Array<(slice: Uint8Array) => void> = []

  constructor(sliceBytes = DIRECT_SLICE_BYTES, slices = STAGING_SLICES, allocate: (length: number) => Uint8Array = alignedBytes) {
    const memory = allocate(sliceBytes * slices)
    this.aligned = isPageAligned(memory) && sliceBytes % DIRECT_ALIGN === 0
    for (let i = 0; i < slices; i++) this.#free.push(memory.subarray(i * sliceBytes, (i + 1) * sliceBytes))
  }

  acquire(): Promise<Uint8Array> {
    const slice = this.#free.pop()
    if (slice !== undefined) return Promise.resolve(slice)
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  release(slice: Uint8Array): void {
    const next = this.#waiting.shift()
    if (next !== undefined) next(slice)
    else this.#free.push(slice)
  }
}

/** ArrayBuffers made by {@link alignedBytes}: their first byte sits on a page boundary. */
const pageAligned = new WeakSet<ArrayBufferLike>()

/**
 * A zeroed buffer of `length` bytes that starts on a page boundary (its own WebAssembly.Memory,
 * rounded up to 64 KiB). A chunk received into one is written directly from it, without the
 * staging copy (~5 % of a receiving node's CPU, measured). V8 reserves address space per
 * Memory but commits only the pages touched, so this costs no more RSS than a Uint8Array.
 *
 * Where no Memory can be made (no WebAssembly, or its allocation throws), an ordinary zeroed
 * buffer with no alignment promise: {@link isPageAligned} tells which it is.
 */
export function alignedBytes(length: number): Uint8Array {
  const Memory = wasmMemoryCtor()
  if (Memory !== undefined) {
    const pages = Math.max(1, Math.ceil(length / WASM_PAGE))
    let buffer: ArrayBuffer | undefined
    try {
      buffer = new Memory({ initial: pages, maximum: pages }).buffer
    } catch {
      wasmMemory = undefined // RangeError "could not allocate memory": address space or memory refused
    }
    if (buffer !== undefined) {
      pageAligned.add(buffer)
      return new Uint8Array(buffer, 0, length)
    }
  }
  return new Uint8Array(length)
}

/** Whether `bytes` starts on a page of an {@link alignedBytes} buffer that really is page-aligned (a direct write can take it as it is). */
export function isPageAligned(bytes: Uint8Array): boolean {
  return pageAligned.has(bytes.buffer) && bytes.byteOffset % DIRECT_ALIGN === 0
}

/** Whether {@link alignedBytes} still gives page-aligned memory (false without WebAssembly, or once a Memory was refused). */
export function alignedMemoryAvailable(): boolean {
  return wasmMemoryCtor() !== undefined
}

/**
 * `bytes` widened to whole blocks, when it can be handed to the kernel as it is: it starts on a
 * block of an {@link alignedBytes} buffer (whose length is a multiple of 64 KiB, so the padding
 * always fits). The padding, past the caller's content, is zeroed.
 */
function directView(bytes: Uint8Array): Uint8Array | undefined {
  if (!isPageAligned(bytes)) return undefined
  const padded = Math.ceil(bytes.length / DIRECT_ALIGN) * DIRECT_ALIGN
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, padded)
  view.fill(0, bytes.length)
  return view
}

/** Writes all of `block` (aligned, whole blocks) at `position`. */
async function writeBlocks(fh: FileHandle, block: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < block.length) {
    // a short direct write ends on a block boundary, so the rest stays aligned
    const { bytesWritten } = await fh.write(block, done, block.length - done, position + done)
    if (bytesWritten === 0) throw Object.assign(new Error("direct write made no progress"), { code: "EIO" })
    done += bytesWritten
  }
}

/**
 * Writes `bytes` at offset 0 of `fh` (opened with O_DIRECT), then sets the file's length:
 * straight from `bytes` when it lies in an {@link alignedBytes} buffer (whose padding past
 * `bytes` is overwritten with zeros), else copied through `staging` slice by slice. Returns
 * which it did. Throws what the kernel throws; EINVAL means the file system refuses direct I/O
 * for this file (or, thrown here before any write, that `staging` is not aligned), and the
 * caller falls back to a buffered write.
 */
export async function writeDirect(fh: FileHandle, bytes: Uint8Array, staging: AlignedStaging): Promise<"direct" | "staged"> {
  const view = directView(bytes)
  if (view !== undefined) {
    await writeBlocks(fh, view, 0)
  } else {
    await writeStaged(fh, bytes, staging)
  }
  if (bytes.length % DIRECT_ALIGN !== 0) await fh.truncate(bytes.length)
  return view !== undefined ? "direct" : "staged"
}

async function writeStaged(fh: FileHandle, bytes: Uint8Array, staging: AlignedStaging): Promise<void> {
  // the kernel's answer to an unaligned buffer, given before it is asked (some file systems would take it)
  if (!staging.aligned) throw Object.assign(new Error("direct write: no page-aligned staging"), { code: "EINVAL" })
  const slice = await staging.acquire()
  try {
    for (let off = 0; off < bytes.length; off += slice.length) {
      const n = Math.min(slice.length, bytes.length - off)
      slice.set(bytes.subarray(off, off + n))
      const padded = Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN
      slice.fill(0, n, padded)
      await writeBlocks(fh, slice.subarray(0, padded), off)
    }
  } finally {
    staging.release(slice)
  }
}
