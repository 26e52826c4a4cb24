/**
 * Dataforts: a content-addressed blob layer that plugs into NATS. This is the one public
 * entry: the `Blobs` store, `BlobRef`, the tree and mesh helpers, and the error classes.
 */
export { Blobs } from "./blobs.ts"
export type { AbortOptions, BlobsAttachOptions, BlobsOpenOptions, PutOptions, ReadOptions, ReadSources } from "./blobs.ts"
export type { AttachOptions } from "./mesh.ts"
export { fetchBlob, type FetchBlobOptions } from "./fetch-blob.ts"
/** The fold primitive: applications fold their own events (carrying refs) beside Dataforts' folds. */
export { defineFold, type FoldDefinition, type AnyFoldDefinition, type FoldEvent } from "../folds/index.ts"
export type { PutInput } from "./inputs.ts"
export type { Progress, OnProgress } from "./progress.ts"
export { BlobRef, type BlobKind } from "../storage/format/blob-ref.ts"
export type { BlobStat } from "../storage/local-store.ts"
export {
  AbortedError,
  BadManifestError,
  BadRefError,
  ClosedError,
  DatafortsError,
  DiskFullError,
  IntegrityError,
  NoHolderError,
  NotFoundError,
  PermissionError,
  ProtocolError,
  StorageError,
  StoreLockedError,
  TimeoutError,
  TooLargeError,
  UnsafePathError,
  type ErrorCode,
} from "../storage/format/errors.ts"
export { CHUNK_AVG_BYTES, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES, TRANSFER_MAX_CHUNK_BYTES } from "../storage/format/constants.ts"
export { storeDir, fetchDir, readDirManifest, walkDir, DEFAULT_TREE_LIMITS, type DirOptions, type TreeEntry, type TreeLimits } from "./dirs.ts"
export type { DirEntry, DirManifest } from "../storage/format/dir-manifest.ts"
export { metricsRegistry, serveMetrics } from "./metrics.ts"
/** The NATS subject permissions each role needs, and the nats-server config block for them (docs/OPERATIONS.md). */
export { authorizationBlock, natsPermissions, type AuthUser, type NatsPermissions, type NatsRole } from "./auth-config.ts"
