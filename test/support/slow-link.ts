import { connect, createServer, type Server, type Socket } from "node:net"

/**
 * A TCP relay on 127.0.0.1 to a NATS server that reads slowly from its clients: after every
 * read from a client it stops reading for `pauseMs`. A client connected through it sees its
 * socket back up (writes stay queued in Node), as on a congested link.
 */
export async function startSlowLink(natsUrl: string, pauseMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(natsUrl.replace(/^nats:/, "http:"))
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    upstream.pipe(client)
    client.on("data", (d) => {
      upstream.write(d)
      client.pause()
      setTimeout(() => client.resume(), pauseMs)
    })
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on("error", end).on("close", end)
    upstream.on("error", end).on("close", end)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `nats://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
