/** glibc malloc knobs and page-aligned buffers; undefined when the native build is unavailable. */
export declare const malloc:
  | {
      /** mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD); false where malloc is not glibc's. */
      hold(mmapThresholdBytes: number, trimThresholdBytes: number): boolean
      /** malloc_trim(0): true if memory was given back. */
      trim(): boolean
      /** `length` rounded up to 4 KiB, starting on a 4 KiB boundary; not zeroed; freed by the GC. */
      alignedBuffer(length: number): ArrayBuffer
    }
  | undefined
