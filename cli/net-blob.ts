#!/usr/bin/env -S node --no-incremental-marking
// --no-incremental-marking: a streaming process with a small heap otherwise falls into back-to-back
// mark-compacts (V8's soft-limit start); see docs/PERFORMANCE.md, "Hosting a node".
/**
 * net-blob: the node-local store from the shell.
 *   net-blob put <file|dir|-> [--tag k=v]...  store bytes (stdin with -), print the ref
 *   net-blob get <ref> [--out path]           write the bytes (stdout by default)
 *   net-blob stat <ref>                       what this node knows about a blob
 *   net-blob ls [--tag k=v]... [--all]        blobs held here (top-level ones unless --all)
 *   net-blob rm <ref>                         forget a blob (operator action)
 * The store comes from --dir or DATAFORTS_DIR. --json prints machine-readable output.
 * This file only parses the line (help, --version and usage errors answer at once); the
 * commands, and with them the store, load afterwards (blob-commands.ts).
 */
import { front, parseTags, type ProgramSpec } from "./args.ts"
import { reportError, UsageError } from "./exit-codes.ts"

const STORE_ENV = [
  ["DATAFORTS_DIR", "the store folder, when --dir is not given"],
  ["DATAFORTS_NO_NATIVE", "1 turns off the optional native helpers (docs/OPERATIONS.md)"],
] as const

const EXIT_CODES =
  "0 ok, 1 internal, 2 usage, 3 bad ref, 4 not found, 5 integrity, 6 too large, 7 bad manifest, 8 unsafe path, 11 aborted, 13 storage, 14 disk full, 17 store in use, 18 no such file (docs/OPERATIONS.md)"

const NET_BLOB: ProgramSpec = {
  name: "net-blob",
  summary: "The node-local Dataforts store from the shell: put bytes in, get a ref; resolve a ref to verified bytes.",
  exitCodes: EXIT_CODES,
  options: {
    dir: { type: "string", value: "<path>", help: "the store folder (default: $DATAFORTS_DIR)" },
    out: { type: "string", short: "o", value: "<path>", help: "write to this file (or folder, for a dir ref) instead of stdout; atomic" },
    tag: { type: "string", multiple: true, value: "<key=value>", help: "tag the blob (repeatable)" },
    all: { type: "boolean", help: "also the blobs stored as parts of a tree (its files and subdirectories)" },
    json: { type: "boolean", help: "machine-readable output: one JSON object per line (errors too, on stderr)" },
    quiet: { type: "boolean", short: "q", help: "no progress bar" },
  },
  commands: [
    {
      name: "put",
      args: "<file|dir|->",
      required: 1,
      summary: "store a file, a directory tree or stdin; print the ref",
      description:
        "Stores the bytes of a file (streamed, about one chunk of memory), a directory tree (files, modes,\nempty folders and symlinks, never followed) or stdin (-), and prints the ref on stdout. A progress\nbar goes to stderr on a terminal. Storing the same bytes again gives the same ref and merges tags.",
      options: ["dir", "tag", "json", "quiet"],
      optionHelp: { tag: "tag the blob, or a tree's root (repeatable); a second put merges tags" },
      env: STORE_ENV,
      examples: ["net-blob put big.bin --tag version=v3", "tar c src | net-blob put - --dir ./data", "net-blob put ./workspace --json"],
    },
    {
      name: "get",
      args: "<ref>",
      required: 1,
      summary: "write a blob's verified bytes to stdout or --out",
      description:
        "Writes a blob's bytes, each chunk verified against the ref, to stdout, or to --out atomically\n(a .partial file renamed at the end). A directory ref needs --out <dir>: the tree is materialized\nthere atomically (the old tree or the new one, never a mix).",
      options: ["dir", "out", "json", "quiet"],
      env: STORE_ENV,
      examples: ["net-blob get df1-manifest-… --out copy.bin", "net-blob get df1-dir-… --out ./checkout"],
    },
    {
      name: "stat",
      args: "<ref>",
      required: 1,
      summary: "what this store knows about a blob",
      description: "Prints a held blob's kind, size, chunk count, tags, creation and last-read times. Exit 4 when not held.",
      options: ["dir", "json"],
      env: STORE_ENV,
      examples: ["net-blob stat df1-chunk-… --json"],
    },
    {
      name: "ls",
      args: "",
      required: 0,
      summary: "list the blobs held here",
      description:
        "Lists the blobs this store holds, one a line: ref, size, kind, tags and age. Blobs stored as parts\nof a tree (its files and subdirectories) are left out unless --all. --tag keeps only the blobs that\ncarry every tag given.",
      options: ["dir", "tag", "all", "json"],
      optionHelp: { tag: "only blobs with this tag (repeatable: every one must match)" },
      env: STORE_ENV,
      examples: ["net-blob ls --tag version=v3", "net-blob ls --all --json"],
    },
    {
      name: "rm",
      args: "<ref>",
      required: 1,
      summary: "forget a blob here (chunks other blobs share stay)",
      description: "Operator action: forgets a blob in this store and removes the chunks nothing else references. Exit 4 when not held.",
      options: ["dir", "json"],
      env: STORE_ENV,
      examples: ["net-blob rm df1-manifest-…"],
    },
  ],
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json")
  try {
    const line = front(NET_BLOB, argv)
    if (line.kind === "exit") return line.code
    const { cmd, args, values } = line
    const dir = (values.dir as string | undefined) ?? process.env.DATAFORTS_DIR
    if (!dir) throw new UsageError("no store: pass --dir <path> or set DATAFORTS_DIR", `net-blob help ${cmd.name}`)
    const tags = parseTags(values.tag as string[] | undefined, `net-blob help ${cmd.name}`)
    const { runBlobCommand } = await import("./blob-commands.ts")
    return await runBlobCommand({
      cmd: cmd.name,
      arg: args[0],
      dir,
      out: values.out as string | undefined,
      tags,
      all: values.all === true,
      json,
      quiet: values.quiet === true,
    })
  } catch (err) {
    return reportError(err, json, "net-blob")
  }
}

process.exitCode = await main(process.argv.slice(2))
