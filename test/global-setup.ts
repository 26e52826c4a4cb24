import type { TestProject } from "vitest/node"
import { startNatsServer } from "./support/nats-server.ts"

declare module "vitest" {
  export interface ProvidedContext {
    natsUrl: string
  }
}

/** One real nats-server (loopback, OS-assigned port) for the whole integration project. */
export default async function setup(project: TestProject) {
  const server = await startNatsServer({ jetstream: true })
  project.provide("natsUrl", server.url)
  return () => server.stop()
}
