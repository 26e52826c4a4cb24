/**
 * `net-mesh auth-config`: prints the nats-server `authorization` block one user needs (or its
 * permissions as JSON), from the same function the docs and the permission tests use
 * (plugin/auth-config.ts). Needs no server and no store.
 */
import { authorizationBlock, type AuthUser, type NatsRole, natsPermissions, NATS_ROLES, userName } from "../plugin/auth-config.ts"
import { UsageError } from "./exit-codes.ts"

export interface AuthConfigArgs {
  readonly node?: string | undefined
  readonly user?: string | undefined
  readonly role?: string | undefined
  readonly prefix?: string | undefined
  readonly passwordEnv?: string | undefined
  readonly inboxPrefix?: string | undefined
  readonly json: boolean
}

/** The text `net-mesh auth-config` prints for these arguments; UsageError for a mistake. */
export function authConfigText(a: AuthConfigArgs, see = "net-mesh help auth-config"): string {
  const role = (a.role ?? "node") as NatsRole
  if (!NATS_ROLES.includes(role)) throw new UsageError(`--role must be one of ${NATS_ROLES.join(", ")}: ${a.role}`, see)
  if (role !== "observer" && a.node === undefined) throw new UsageError(`a ${role} needs --node <id>`, see)
  const spec: AuthUser = {
    role,
    ...(a.node === undefined ? {} : { node: a.node }),
    ...(a.user === undefined ? {} : { user: a.user }),
    ...(a.prefix === undefined ? {} : { prefix: a.prefix }),
    ...(a.passwordEnv === undefined ? {} : { passwordEnv: a.passwordEnv }),
    ...(a.inboxPrefix === undefined ? {} : { inboxPrefix: a.inboxPrefix }),
  }
  try {
    return a.json
      ? `${JSON.stringify({ user: userName(spec), role, node: a.node ?? null, permissions: natsPermissions(role, spec) })}\n`
      : authorizationBlock([spec])
  } catch (err) {
    // the generator's checks (ids, prefix, env name) are mistakes on the command line
    if (err instanceof TypeError) throw new UsageError(err.message, see)
    throw err
  }
}
