/**
 * A throwaway PKI for TLS tests, made in-process (no `openssl` binary: CI is a bare Debian
 * with Node and npm; docs/DECISIONS.md): a CA, a server certificate for 127.0.0.1 and
 * localhost, and a client certificate, RSA-2048 with Node's own key generation (native)
 * and node-forge for the certificates, written as PEM files in a temp dir.
 */
import { generateKeyPair } from "node:crypto"
import { promisify } from "node:util"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import forge from "node-forge"

export interface TestPki {
  readonly dir: string
  /** PEM text, for nats.js `tls: { ca }`. */
  readonly caPem: string
  readonly caFile: string
  readonly serverCertFile: string
  readonly serverKeyFile: string
  /** PEM text of the client certificate and key, for nats.js `tls: { cert, key }`. */
  readonly clientCertPem: string
  readonly clientKeyPem: string
  /** A nats-server `tls {}` block that requires and verifies client certificates. */
  readonly serverTlsConfig: string
  remove(): Promise<void>
}

interface KeyPair {
  readonly privateKey: forge.pki.rsa.PrivateKey
  readonly publicKey: forge.pki.rsa.PublicKey
  readonly pem: string
}

async function newKeys(): Promise<KeyPair> {
  const { privateKey: pem } = await promisify(generateKeyPair)("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } })
  const privateKey = forge.pki.privateKeyFromPem(pem)
  return { privateKey, publicKey: forge.pki.setRsaPublicKey(privateKey.n, privateKey.e), pem }
}

/** Makes the CA and both leaf certificates (valid from an hour ago for a day) and writes them to a temp dir. */
export async function makeTestPki(): Promise<TestPki> {
  const notBefore = new Date(Date.now() - 3600_000)
  const notAfter = new Date(Date.now() + 24 * 3600_000)
  const make = (serial: string, cn: string, keys: KeyPair, issuer: forge.pki.Certificate | undefined, signer: KeyPair, extensions: object[]) => {
    const cert = forge.pki.createCertificate()
    cert.serialNumber = serial
    cert.validity.notBefore = notBefore
    cert.validity.notAfter = notAfter
    cert.publicKey = keys.publicKey
    cert.setSubject([{ name: "commonName", value: cn }])
    cert.setIssuer((issuer ?? cert).subject.attributes)
    cert.setExtensions([...extensions, { name: "subjectKeyIdentifier" }])
    cert.sign(signer.privateKey, forge.md.sha256.create())
    return cert
  }
  // prime searches take a while on busy cores: all three in parallel, on the thread pool
  const [caKeys, serverKeys, clientKeys] = await Promise.all([newKeys(), newKeys(), newKeys()])
  const ca = make("01", "Dataforts test CA", caKeys, undefined, caKeys, [
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
  ])
  const leaf = (serial: string, cn: string, keys: KeyPair, usage: object, names: object[]) => {
    const cert = make(serial, cn, keys, ca, caKeys, [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", ...usage },
      ...(names.length > 0 ? [{ name: "subjectAltName", altNames: names }] : []),
    ])
    return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.pem }
  }
  const server = leaf("02", "127.0.0.1", serverKeys, { serverAuth: true }, [
    { type: 7, ip: "127.0.0.1" },
    { type: 2, value: "localhost" },
  ])
  const client = leaf("03", "dataforts-test-client", clientKeys, { clientAuth: true }, [])

  const dir = await mkdtemp(join(tmpdir(), "df-pki-"))
  const caPem = forge.pki.certificateToPem(ca)
  const caFile = join(dir, "ca.pem")
  const serverCertFile = join(dir, "server.pem")
  const serverKeyFile = join(dir, "server-key.pem")
  await writeFile(caFile, caPem)
  await writeFile(serverCertFile, server.certPem)
  await writeFile(serverKeyFile, server.keyPem, { mode: 0o600 })
  return {
    dir,
    caPem,
    caFile,
    serverCertFile,
    serverKeyFile,
    clientCertPem: client.certPem,
    clientKeyPem: client.keyPem,
    serverTlsConfig: `tls {\n  cert_file: ${JSON.stringify(serverCertFile)}\n  key_file: ${JSON.stringify(serverKeyFile)}\n  ca_file: ${JSON.stringify(caFile)}\n  verify: true\n}\n`,
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}
