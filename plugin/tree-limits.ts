import { TREE_MAX_BYTES, TREE_MAX_DEPTH, TREE_MAX_ENTRIES } from "../storage/format/dir-manifest.ts"
import { TooLargeError } from "../storage/format/errors.ts"

/**
 * Bounds of one tree, checked before anything is written (fetchDir), as the tree is read
 * (walkDir, storeDir) or per manifest (readDirManifest). A subdirectory named n times counts
 * n times: the limits bound what would land on disk, not what crossed the wire.
 */
export interface TreeLimits {
  /** Entries (files, directories, symlinks) of the expanded tree, root excluded. */
  maxEntries?: number
  /** Directories nested below the root (a root with only files has depth 0). */
  maxDepth?: number
  /** Sum of the file sizes of the expanded tree (each file ref's claimed size). */
  maxBytes?: number
}

/** The defaults: fit real repositories with room (10M entries, depth 256, 1 TiB). */
export const DEFAULT_TREE_LIMITS: Readonly<Required<TreeLimits>> = Object.freeze({
  maxEntries: TREE_MAX_ENTRIES,
  maxDepth: TREE_MAX_DEPTH,
  maxBytes: TREE_MAX_BYTES,
})

/** The caller's limits over the defaults. */
export function resolveTreeLimits(limits: TreeLimits | undefined): Required<TreeLimits> {
  return {
    maxEntries: limits?.maxEntries ?? DEFAULT_TREE_LIMITS.maxEntries,
    maxDepth: limits?.maxDepth ?? DEFAULT_TREE_LIMITS.maxDepth,
    maxBytes: limits?.maxBytes ?? DEFAULT_TREE_LIMITS.maxBytes,
  }
}

/** `what` of the TooLargeError for each limit: tests and callers can tell which one was passed. */
export const LIMIT_NAMES = { maxEntries: "tree entries", maxDepth: "tree depth", maxBytes: "tree bytes" } as const

/** Throws TOO_LARGE naming the limit when `value` passes it. */
export function checkLimit(limits: Required<TreeLimits>, which: keyof TreeLimits, value: number): void {
  if (value > limits[which]) throw new TooLargeError(LIMIT_NAMES[which], value, limits[which])
}
