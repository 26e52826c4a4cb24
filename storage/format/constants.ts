/**
 * Protocol constants. Chunk sizes and the gear table decide every chunk boundary, so
 * changing any of them is a protocol version change (see docs/PROTOCOL.md).
 */
export const MIB = 1024 * 1024

/** FastCDC-2020 minimum chunk size (no cut point before it). */
export const CHUNK_MIN_BYTES = 1 * MIB
/** FastCDC-2020 target average chunk size (the normalization pivot). */
export const CHUNK_AVG_BYTES = 4 * MIB
/** FastCDC-2020 maximum chunk size: a cut is forced here. */
export const CHUNK_MAX_BYTES = 16 * MIB
/** No holder may send, and no receiver accepts, a chunk larger than this. */
export const TRANSFER_MAX_CHUNK_BYTES = CHUNK_MAX_BYTES

/** Most chunks one manifest may list (its encoding stays below one max chunk). */
export const MANIFEST_MAX_ENTRIES = 262_144
/** Largest blob a manifest can describe. */
export const BLOB_MAX_BYTES = MANIFEST_MAX_ENTRIES * CHUNK_MAX_BYTES

/** Version byte of the BlobRef binary and string forms. */
export const REF_VERSION = 1
