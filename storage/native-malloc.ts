import { createRequire } from "node:module"

const require = createRequire(import.meta.url)

export interface NativeMalloc {
  hold(mmapThresholdBytes: number, trimThresholdBytes: number): boolean
  trim(): boolean
  alignedBuffer(length: number): ArrayBuffer
}

/**
 * glibc's malloc knobs and page-aligned buffers through our tiny addon (native/malloc): Node
 * exposes neither. Undefined when the addon did not build; callers then do without.
 */
export const nativeMalloc: NativeMalloc | undefined = (() => {
  try {
    return (require("@dataforts/malloc") as { malloc?: NativeMalloc }).malloc
  } catch {
    return undefined
  }
})()
