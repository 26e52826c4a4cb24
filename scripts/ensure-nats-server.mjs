#!/usr/bin/env node
// Makes sure a `nats-server` binary is there for the demo and the tests, the way .ci/run does:
// NATS_SERVER_BIN or `nats-server` on PATH is used as it is; when missing and running as root,
// Debian's package is installed (apt-get update, then apt-get install nats-server); otherwise
// one line says what to run, and the exit code is 2.
// --unless-nats-url: nothing is needed when NATS_URL is set (the demo then uses that server).
import { spawnSync } from "node:child_process"
import { accessSync, constants } from "node:fs"
import { delimiter, join } from "node:path"

function onPath(bin) {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, bin), constants.X_OK)
      return true
    } catch {}
  }
  return false
}

function present() {
  if (process.env.NATS_SERVER_BIN) return true
  return onPath("nats-server")
}

if (process.argv.includes("--unless-nats-url") && process.env.NATS_URL) process.exit(0)
if (present()) process.exit(0)

const instruction = "nats-server is missing: run `sudo apt-get install nats-server` (Debian), or set NATS_SERVER_BIN to a nats-server binary"
if (process.getuid?.() !== 0 || !onPath("apt-get")) {
  process.stderr.write(`${instruction}\n`)
  process.exit(2)
}
process.stderr.write("nats-server is missing: installing Debian's package (apt-get install nats-server)\n")
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
for (const args of [["update", "-qq"], ["install", "-y", "-qq", "nats-server"]]) {
  const run = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env })
  if (run.status !== 0) {
    process.stderr.write(`apt-get ${args[0]} failed (exit ${run.status}); ${instruction}\n`)
    process.exit(2)
  }
}
if (!present()) {
  process.stderr.write(`${instruction}\n`)
  process.exit(2)
}
