/**
 * What a Dataforts client needs from NATS, as subject permissions: one function gives the
 * allow lists per role and one renders a nats-server `authorization` block. The CLI
 * (`net-mesh auth-config`), docs/OPERATIONS.md "NATS permissions" and the permission tests
 * all use these, so they cannot drift from the subjects the code uses.
 *
 * Binding: a `node` user may publish fold facts only as itself (`<prefix>.fold.*.<node>`)
 * and is the only one that may subscribe to its own request subjects (`xfer`, `batch`,
 * `sync`, `ping` of `<node>`); replies go out through `allow_responses` (one reply to a
 * request it received), never to arbitrary inboxes. With the materializer's origin check
 * (an event whose envelope origin differs from its subject's is dropped), nobody else can
 * speak for that node: not in events, not in sync snapshots.
 */
import { DEFAULT_PREFIX } from "../folds/wire.ts"

/** node: stores, serves and reads; reader: reads, never serves or speaks; observer: watches the folds. */
export type NatsRole = "node" | "reader" | "observer"

export const NATS_ROLES: readonly NatsRole[] = ["node", "reader", "observer"]

/** One user's permissions, in nats-server's shape. */
export interface NatsPermissions {
  readonly publish: { readonly allow: readonly string[] }
  readonly subscribe: { readonly allow: readonly string[] }
  /** May answer (once) requests it received: sync pages, pings, batch replies. */
  readonly allow_responses?: true
}

export interface RoleOptions {
  /** The node id the user runs (`Blobs.open({ node })`); required for node and reader. */
  readonly node?: string
  /** Subject prefix (default `dataforts`). */
  readonly prefix?: string
  /** The connection's `inboxPrefix` (nats.js `connect` option; default `_INBOX`): where request replies arrive. */
  readonly inboxPrefix?: string
}

export interface AuthUser extends RoleOptions {
  /** NATS user name (default: the node id, or `observer`). */
  readonly user?: string
  readonly role: NatsRole
  /** A literal password (tests); otherwise the block refers to an environment variable. */
  readonly password?: string
  /** Environment variable the server reads the password from (default `DATAFORTS_PASSWORD_<USER>`). */
  readonly passwordEnv?: string
  /** Permissions to use instead of the role's (a narrower set, e.g. derived from `natsPermissions`). */
  readonly permissions?: NatsPermissions
}

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/
const ENV = /^[A-Za-z_][A-Za-z0-9_]*$/

/** The subjects `role` needs to publish and subscribe to, exactly. */
export function natsPermissions(role: NatsRole, options: RoleOptions = {}): NatsPermissions {
  const p = options.prefix ?? DEFAULT_PREFIX
  const inbox = options.inboxPrefix ?? "_INBOX"
  if (!PREFIX.test(p)) throw new TypeError(`prefix must be dotted tokens of [A-Za-z0-9_-]: ${p}`)
  if (!PREFIX.test(inbox)) throw new TypeError(`inbox prefix must be dotted tokens of [A-Za-z0-9_-]: ${inbox}`)
  if (!NATS_ROLES.includes(role)) throw new TypeError(`role must be one of ${NATS_ROLES.join(", ")}: ${role}`)
  if (role === "observer") {
    // watch every fold, and ask origins for their snapshots (read-only requests)
    return { publish: { allow: [`${p}.sync.*`] }, subscribe: { allow: [`${p}.fold.*.*`, `${inbox}.>`] } }
  }
  const node = options.node
  if (node === undefined || !TOKEN.test(node)) throw new TypeError(`a ${role} needs its node id ([A-Za-z0-9_-]): ${node ?? "(none)"}`)
  const subscribe = [
    `${p}.fold.*.*`, // every fold's events
    `${p}.xfer.${node}`, // REQ, CREDIT, CANCEL for us as a holder
    `${p}.batch.${node}`, // batch requests for us
    `${p}.sync.${node}`, // snapshot requests for our facts
    `${p}.ping.${node}`, // RTT pings
    `${p}.xfer.in.*.*`, // our receivers' data subjects (one wildcard per receiver)
    `${inbox}.>`, // replies to our requests (sync pages, pings, batches)
  ]
  const requests = [`${p}.xfer.*`, `${p}.batch.*`, `${p}.sync.*`, `${p}.ping.*`]
  if (role === "reader") return { publish: { allow: requests }, subscribe: { allow: subscribe } }
  return {
    publish: { allow: [`${p}.fold.*.${node}`, ...requests, `${p}.xfer.in.>`] },
    subscribe: { allow: subscribe },
    allow_responses: true,
  }
}

/** The user name a spec gets: its own, else the node id, else `observer`. */
export function userName(u: AuthUser): string {
  const name = u.user ?? u.node ?? "observer"
  if (!TOKEN.test(name)) throw new TypeError(`user name must be [A-Za-z0-9_-]: ${name}`)
  return name
}

/** The password expression: a quoted literal, or `$VAR` (nats-server reads it from the environment at start). */
function passwordOf(u: AuthUser): string {
  if (u.password !== undefined) return JSON.stringify(u.password)
  const env = u.passwordEnv ?? `DATAFORTS_PASSWORD_${userName(u).toUpperCase().replace(/-/g, "_")}`
  if (!ENV.test(env)) throw new TypeError(`not an environment variable name: ${env}`)
  return `$${env}`
}

const list = (xs: readonly string[]) => `[${xs.map((x) => JSON.stringify(x)).join(", ")}]`

/** One user entry of a `users = [...]` list. */
export function userEntry(u: AuthUser): string {
  const perms = u.permissions ?? natsPermissions(u.role, u)
  const lines = [
    `    {`,
    `      # ${u.role}${u.node === undefined ? "" : ` ${u.node}`}, prefix ${u.prefix ?? DEFAULT_PREFIX}`,
    `      user: ${JSON.stringify(userName(u))}`,
    `      password: ${passwordOf(u)}`,
    `      permissions: {`,
    `        publish: { allow: ${list(perms.publish.allow)} }`,
    `        subscribe: { allow: ${list(perms.subscribe.allow)} }`,
    ...(perms.allow_responses ? [`        allow_responses: true`] : []),
    `      }`,
    `    }`,
  ]
  return lines.join("\n")
}

/** A nats-server `authorization { users = [...] }` block for these users. */
export function authorizationBlock(users: readonly AuthUser[]): string {
  const names = users.map(userName)
  const dup = names.find((n, i) => names.indexOf(n) !== i)
  if (dup !== undefined) throw new TypeError(`user ${dup} appears twice`)
  return [`authorization {`, `  users = [`, ...users.map(userEntry), `  ]`, `}`, ``].join("\n")
}
