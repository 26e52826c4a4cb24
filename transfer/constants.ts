/**
 * Transfer protocol constants. The wire values (version, frame limit, header sizes) are
 * part of docs/PROTOCOL.md; the DEFAULT_* tunables are local choices of this node.
 */

/** Version byte carried first in every transfer message. */
export const TRANSFER_VERSION = 1

/** Largest NATS message payload a holder sends, frame header included. */
export const FRAME_MAX_BYTES = 8108
/** DATA header: version u8, type u8, offset u32 (big-endian). */
export const DATA_HEADER_BYTES = 6
/** Most payload bytes one DATA frame carries (8102). */
export const DATA_MAX_PAYLOAD = FRAME_MAX_BYTES - DATA_HEADER_BYTES
/** ERR messages are truncated to this many UTF-8 bytes. */
export const ERR_MESSAGE_MAX_BYTES = 1024

/** Subject prefix of all Dataforts traffic. */
export const DEFAULT_PREFIX = "dataforts"

/**
 * Receiver credit window: 256 full frames (~2 MB) per chunk fetch. Everything credited sits
 * in queues (the holder's socket, the server, the reader's socket), and one reader runs six
 * fetches: with 512 frames (24 MB queued) a small get behind a bulk read waited ~20 ms at p99,
 * with 256 ~15 ms, at the same bulk throughput (bench/transfer, docs/PERFORMANCE.md).
 */
export const DEFAULT_WINDOW_BYTES = 256 * DATA_MAX_PAYLOAD
/** The receiver returns credit about every window/4 bytes (64 frames). */
export const DEFAULT_ACK_DIVISOR = 4
/** A holder silent this long (no frame at all) is abandoned for the next one. */
export const DEFAULT_IDLE_TIMEOUT_MS = 5_000
/** Upper bound of requests one fetch makes (all holders, resumes and retries together). */
export const DEFAULT_MAX_ATTEMPTS = 24

/**
 * The holder reads its source in windows of 128 full frames (~1 MiB), two at most per
 * transfer, while few transfers share it: each read is a thread-pool round trip, and with
 * ~253 KiB windows a busy 2-core holder sat idle waiting for reads ~40 % of the time
 * (measured). With more than SENDER_FEW_TRANSFERS active it reads 32-frame windows, so its
 * slab memory stays under ~2 × 253 KiB per transfer.
 */
export const DEFAULT_READ_WINDOW_BYTES = 128 * DATA_MAX_PAYLOAD
export const BUSY_READ_WINDOW_BYTES = 32 * DATA_MAX_PAYLOAD
export const SENDER_FEW_TRANSFERS = 16
/**
 * Reads ahead of what a transfer has buffered that may run at once (transfer/read-ahead-gate.ts;
 * bench/transfer step 3: a 16 KiB get's p99 under load 29 → 23 ms).
 */
export const SENDER_MAX_READS_AHEAD = 2
/** Deficit round robin quantum: 8 full frames per transfer per round. */
export const DEFAULT_QUANTUM_BYTES = 8 * DATA_MAX_PAYLOAD
/** A transfer that received no credit for this long is dropped by the holder. */
export const DEFAULT_SENDER_IDLE_DROP_MS = 15_000
/** Transfers one holder serves at once; more get ERR BUSY. */
export const DEFAULT_MAX_ACTIVE_TRANSFERS = 512
/** The holder yields to the event loop after publishing this many bytes. */
export const SENDER_YIELD_BYTES = 256 * 1024
/** The holder waits for drain above this much queued in the socket (nats.js ignores backpressure); short queues keep small replies behind bulk frames quick and write buffers young. */
export const SENDER_SOCKET_HIGH_WATER = 128 * 1024
/**
 * The holder sends a PING to the server every this many bytes written and, while more than
 * one reader asked it for chunks within SENDER_SHARED_MS, waits while more than
 * SENDER_UNANSWERED_PINGS are unanswered: at most ~0.75 MiB of its frames then wait in front
 * of the server (transfer/server-pace.ts). With one reader's six 2 MB windows ~12 MB could
 * queue there, and a 16 KiB get by another reader waited behind it (p99 busy/idle 5.5, ~2.7
 * paced). A holder serving one reader allows SENDER_UNANSWERED_PINGS_ALONE (~2 MiB): tight
 * pacing cost that reader ~10 % of its throughput (dev harness, side by side).
 */
export const SENDER_PING_BYTES = 256 * 1024
export const SENDER_UNANSWERED_PINGS = 2
export const SENDER_UNANSWERED_PINGS_ALONE = 8
export const SENDER_SHARED_MS = 2_000
