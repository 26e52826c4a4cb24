#!/usr/bin/env -S node --no-incremental-marking
// --no-incremental-marking: a streaming process with a small heap otherwise falls into back-to-back
// mark-compacts (V8's soft-limit start); see docs/PERFORMANCE.md, "Hosting a node".
/**
 * net-mesh: move blobs and trees between nodes over NATS, and look at the mesh.
 *   net-mesh transfer send-blob <file>              put, print the ref, serve until Ctrl-C
 *   net-mesh transfer recv-blob <ref> --out <file>  fetch with a progress bar; print the sources
 *   net-mesh transfer send-dir <dir>                the same for a directory tree
 *   net-mesh transfer recv-dir <ref> --out <dir>
 *   net-mesh nodes                                  live nodes with zone and RTT
 *   net-mesh holders <ref>                          nodes holding a ref, nearest first
 *   net-mesh auth-config --node <id>                the nats-server permissions a node needs
 * Options: --server (NATS_URL, default nats://127.0.0.1:4222), --node (default
 * <hostname>-<pid>), --dir (DATAFORTS_DIR, default a temp store removed on exit), --prefix,
 * --zone, --wait <ms>, --json, --quiet. Exit codes as net-blob (cli/exit-codes.ts), and 16
 * when the NATS server cannot be reached. This file only parses the line; the commands (and
 * NATS, the store) load afterwards (mesh-commands.ts).
 */
import { front, type ProgramSpec } from "./args.ts"
import { EXIT, reportError, UsageError } from "./exit-codes.ts"

/** The NATS server could not be reached (not one of the store's error codes). */
export const EXIT_NO_SERVER = EXIT.NO_SERVER

const NODE_OPTIONS = ["server", "node", "dir", "prefix", "zone", "json"]
const ENV = [
  ["NATS_URL", "the NATS server, when --server is not given (default nats://127.0.0.1:4222)"],
  ["DATAFORTS_DIR", "the store folder, when --dir is not given (default: a temp store removed on exit)"],
  ["DATAFORTS_NO_NATIVE", "1 turns off the optional native helpers (docs/OPERATIONS.md)"],
] as const

const NET_MESH: ProgramSpec = {
  name: "net-mesh",
  summary: "Move Dataforts blobs and trees between nodes over NATS, and look at the mesh. Each run is a node\nof its own (--node) with a store (--dir, or a temp one).",
  exitCodes:
    "0 ok, 1 internal, 2 usage, 3 bad ref, 4 not found, 5 integrity, 6 too large, 7 bad manifest, 8 unsafe path, 9 no holder, 10 timeout, 11 aborted, 13 storage, 14 disk full, 15 protocol, 16 NATS unreachable, 17 store in use, 18 no such file, 19 permission denied by the NATS server (docs/OPERATIONS.md)",
  groups: ["transfer"],
  options: {
    server: { type: "string", short: "s", value: "<url>", help: "the NATS server (default: $NATS_URL, else nats://127.0.0.1:4222)" },
    node: { type: "string", value: "<id>", help: "this node's id, [A-Za-z0-9_-]{1,128} (default: <hostname>-<pid>)" },
    dir: { type: "string", value: "<path>", help: "the store folder (default: $DATAFORTS_DIR, else a temp store removed on exit)" },
    prefix: { type: "string", value: "<p>", help: "subject prefix of the mesh (nodes with different prefixes do not see each other)" },
    zone: { type: "string", value: "<z>", help: "this node's zone (holders in the same zone are preferred)" },
    out: { type: "string", short: "o", value: "<path>", help: "where to write (required)" },
    wait: { type: "string", value: "<ms>", help: "how long to wait for holders to be known (default 2500)" },
    json: { type: "boolean", help: "machine-readable output: one JSON object per line" },
    quiet: { type: "boolean", short: "q", help: "no progress bar" },
    user: { type: "string", value: "<name>", help: "the NATS user name (default: the node id; observer for an observer)" },
    role: { type: "string", value: "<role>", help: "node (stores, serves, reads), reader (reads only, speaks for no one) or observer (watches the folds); default node" },
    "password-env": { type: "string", value: "<VAR>", help: "the environment variable nats-server reads the password from (default DATAFORTS_PASSWORD_<USER>)" },
    "inbox-prefix": { type: "string", value: "<p>", help: "the connection's nats.js inboxPrefix, when it is not _INBOX" },
  },
  commands: [
    {
      name: "transfer send-blob",
      args: "<file>",
      required: 1,
      summary: "put a file, print its ref, serve it until Ctrl-C",
      description: "Stores the file in this node's store, prints the ref on stdout, and serves it to the mesh until\nSIGINT or SIGTERM (then exits 0 after a clean close).",
      options: [...NODE_OPTIONS, "quiet"],
      env: ENV,
      examples: ["net-mesh transfer send-blob big.bin --node producer", "NATS_URL=nats://10.0.0.5:4222 net-mesh transfer send-blob model.bin --json"],
    },
    {
      name: "transfer recv-blob",
      args: "<ref> --out <file>",
      required: 1,
      summary: "fetch a blob from the nearest holders into a file",
      description:
        "Fetches a blob from the nearest live holders (verified chunk by chunk) into --out, atomically,\nwith bytes, %, rate and ETA on stderr; then prints where the bytes came from.",
      options: [...NODE_OPTIONS, "out", "wait", "quiet"],
      optionHelp: { out: "the file to write (required)" },
      env: ENV,
      examples: ["net-mesh transfer recv-blob df1-manifest-… --out big.bin --wait 10000"],
    },
    {
      name: "transfer send-dir",
      args: "<dir>",
      required: 1,
      summary: "store a directory tree, print its ref, serve it until Ctrl-C",
      description: "Stores the tree (files, modes, empty folders, symlinks never followed), prints the root ref, and\nserves it until SIGINT or SIGTERM.",
      options: [...NODE_OPTIONS, "quiet"],
      env: ENV,
      examples: ["net-mesh transfer send-dir ./workspace"],
    },
    {
      name: "transfer recv-dir",
      args: "<ref> --out <dir>",
      required: 1,
      summary: "fetch a tree and materialize it atomically",
      description:
        "Fetches a tree from the nearest holders (small files in batches) and materializes it at --out\natomically: the old tree or the new one, never a mix. Then prints where the bytes came from.",
      options: [...NODE_OPTIONS, "out", "wait", "quiet"],
      optionHelp: { out: "the folder to write (required; replaced atomically)" },
      env: ENV,
      examples: ["net-mesh transfer recv-dir df1-dir-… --out ./checkout"],
    },
    {
      name: "nodes",
      args: "",
      required: 0,
      summary: "live nodes with zone and RTT",
      description: "Joins the mesh, listens for heartbeats for --wait ms, and lists the live nodes with their zone\nand round-trip time.",
      options: [...NODE_OPTIONS, "wait"],
      optionHelp: { wait: "how long to listen before answering (default 2500)" },
      env: ENV,
      examples: ["net-mesh nodes --wait 3000 --json"],
    },
    {
      name: "holders",
      args: "<ref>",
      required: 1,
      summary: "nodes holding a ref, nearest first",
      description: "Lists the live nodes that hold a blob, nearest first (same zone, then RTT). Exit 9 when none does.",
      options: [...NODE_OPTIONS, "wait"],
      optionHelp: { wait: "how long to listen before answering (default 2500)" },
      env: ENV,
      examples: ["net-mesh holders df1-manifest-…"],
    },
    {
      name: "auth-config",
      args: "",
      required: 0,
      summary: "print the nats-server permissions one user needs",
      description:
        "Prints a nats-server 'authorization { users = [...] }' block for one user: the exact subjects its\nrole may publish and subscribe to, binding a node's fold facts and request subjects to its own\nuser (docs/OPERATIONS.md, NATS permissions). The password is an environment variable reference\nthe server resolves at start. --json prints the permissions instead. Needs no server or store.",
      options: ["node", "user", "role", "prefix", "password-env", "inbox-prefix", "json"],
      optionHelp: { node: "the node id the user runs (required for node and reader)" },
      env: [],
      examples: ["net-mesh auth-config --node build-7 >> nats-server.conf", "net-mesh auth-config --role observer --user grafana --password-env GRAFANA_NATS_PASSWORD", "net-mesh auth-config --node build-7 --role reader --json"],
    },
  ],
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json")
  try {
    const line = front(NET_MESH, argv)
    if (line.kind === "exit") return line.code
    const { cmd, args, values } = line
    const see = `net-mesh help ${cmd.name}`
    const out = values.out as string | undefined
    if (cmd.options.includes("out") && out === undefined) throw new UsageError(`'${cmd.name}' needs --out ${cmd.name.endsWith("dir") ? "<dir>" : "<file>"}`, see)
    const waitText = values.wait as string | undefined
    const waitMs = waitText === undefined ? undefined : Number(waitText)
    if (waitMs !== undefined && !(waitMs >= 0)) throw new UsageError(`--wait takes milliseconds, got '${waitText}'`, see)
    const node = values.node as string | undefined
    if (node !== undefined && !/^[A-Za-z0-9_-]{1,128}$/.test(node)) throw new UsageError(`--node must match [A-Za-z0-9_-]{1,128}: ${node}`, see)
    if (cmd.name === "auth-config") {
      const { authConfigText } = await import("./mesh-auth.ts")
      const str = (k: string) => values[k] as string | undefined
      process.stdout.write(authConfigText({ node, user: str("user"), role: str("role"), prefix: str("prefix"), passwordEnv: str("password-env"), inboxPrefix: str("inbox-prefix"), json }, see))
      return EXIT.OK
    }
    const { runMeshCommand } = await import("./mesh-commands.ts")
    return await runMeshCommand({
      cmd: cmd.name,
      arg: args[0]!,
      out,
      waitMs,
      json,
      quiet: values.quiet === true,
      session: {
        server: values.server as string | undefined,
        node,
        dir: values.dir as string | undefined,
        prefix: values.prefix as string | undefined,
        zone: values.zone as string | undefined,
      },
    })
  } catch (err) {
    return reportError(err, json, "net-mesh")
  }
}

process.exitCode = await main(process.argv.slice(2))
