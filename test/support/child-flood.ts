/**
 * A flooding attacker in its own process (run with `node --import tsx`), so its publishing
 * does not share the event loop of the node under test:
 *   <natsUrl> <prefix> <origins> <hashHex>
 * Makes up `origins` origins, each publishing one event: even ones a heartbeat (alive for an
 * hour, claiming a holders watermark nobody serves), odd ones an advert of a random hash and
 * `hashHex`. Then a malformed heat event as the end marker, prints "done <ms>" and exits.
 */
import { randomBytes } from "node:crypto"
import { connect } from "@nats-io/transport-node"

const [url, prefix, count, hashHex] = process.argv.slice(2)
const nc = await connect({ servers: url! })
const enc = new TextEncoder()
const json = (v: unknown) => enc.encode(JSON.stringify(v))
const epoch = Date.now() * 1000
const t0 = Date.now()
for (let i = 0; i < Number(count); i++) {
  const origin = `fake${i}`
  if (i % 2 === 0) nc.publish(`${prefix}.fold.nodes.${origin}`, json({ origin, epoch, seq: 1, data: { intervalMs: 3_600_000, watermarks: { holders: 2 } } }))
  else nc.publish(`${prefix}.fold.holders.${origin}`, json({ origin, epoch, seq: 1, data: { add: [randomBytes(32).toString("hex"), hashHex], remove: [] } }))
  // paced by the server's PONGs: as fast as the server takes it, not one burst
  if (i % 2000 === 1999) await nc.flush()
}
nc.publish(`${prefix}.fold.heat.sentinel`, enc.encode("end of flood"))
await nc.flush()
process.stdout.write(`done ${Date.now() - t0}\n`)
await nc.close()
