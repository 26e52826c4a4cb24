/** glibc malloc knobs and madvise; undefined when the native build is unavailable. */
export declare const mallocTune:
  | {
      /** mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD); false where malloc is not glibc's. */
      hold(mmapThresholdBytes: number, trimThresholdBytes: number): boolean
      /** malloc_trim(0): true if memory was given back. */
      trim(): boolean
      /** madvise(MADV_DONTNEED) on the whole pages of the range (they read as zeros after); throws ERANGE outside the buffer. */
      discard(buffer: ArrayBuffer, offset: number, length: number): boolean
      /** madvise(MADV_HUGEPAGE) on the buffer's whole pages. */
      adviseHugePages(buffer: ArrayBuffer): boolean
    }
  | undefined
