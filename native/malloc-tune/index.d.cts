/** glibc malloc knobs; undefined when the native build is unavailable. */
export declare const mallocTune:
  | {
      /** mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD); false where malloc is not glibc's. */
      hold(mmapThresholdBytes: number, trimThresholdBytes: number): boolean
      /** malloc_trim(0): true if memory was given back. */
      trim(): boolean
    }
  | undefined
