#!/usr/bin/env node
// Test peer for encjob's interop tests: the official AWS Encryption SDK for
// JavaScript (@aws-crypto/client-node) behind a tiny CLI.
//
//   node peer.js encrypt --in FILE --out FILE --keys KEYSPEC.json [--suite 0x0578] [--frame 4096] [--context JSON]
//   node peer.js decrypt --in FILE --out FILE --keys KEYSPEC.json [--policy P] [--max-edks N]
//   node peer.js batch --jobs JOBS.json [--results RESULTS.json]
//
// KEYSPEC.json is {"keys": [KEY, ...]}; the first key is the generator of a
// multi-keyring, the others its children. A KEY is
//   {"type": "raw-aes", "key_namespace", "key_name", "material_b64"}
//   {"type": "raw-rsa", "key_namespace", "key_name", "padding",
//    "public_key_pem", "private_key_pem"}   (either PEM may be absent)
// with padding one of pkcs1, oaep-sha1, oaep-sha256, oaep-sha384, oaep-sha512.
//
// JOBS.json is {"jobs": [JOB, ...]}; a JOB has "id", "op" (encrypt|decrypt),
// "in", "out", "keys" (a list of KEYs) and the optional "suite",
// "frame_length", "context", "commitment_policy", "max_encrypted_data_keys".
// Batch mode writes {"results": [{"id", "ok", "error", "suite", "version",
// "message_id_b64", "frame_length", "content_type", "context", "edks",
// "commit_key_b64"}, ...]} (header fields as the JS ESDK wrote or parsed
// them; an edk is {"provider_id", "provider_info_b64", "ciphertext_b64"})
// and exits 0 even when jobs fail; it exits non-zero only when it cannot run
// at all.
//
// Commitment policy: unless a job names one, encryption uses
// FORBID_ENCRYPT_ALLOW_DECRYPT for message format v1 suites and
// REQUIRE_ENCRYPT_REQUIRE_DECRYPT for v2 suites; decryption uses
// REQUIRE_ENCRYPT_ALLOW_DECRYPT so that every suite decrypts.
//
// RSA PKCS#1 v1.5 decryption needs Node.js started with
// --security-revert=CVE-2023-46809 on releases since February 2024.
'use strict'

const fs = require('fs')
const { constants } = require('crypto')
const {
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  RawRsaKeyringNode,
  MultiKeyringNode,
} = require('@aws-crypto/client-node')

const aesWrapping = {
  16: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  24: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  32: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
}

const rsaPadding = {
  pkcs1: { padding: constants.RSA_PKCS1_PADDING },
  'oaep-sha1': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
  'oaep-sha256': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
  'oaep-sha384': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' },
  'oaep-sha512': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' },
}

function keyring(key, i) {
  const where = `keys[${i}]`
  if (!key || typeof key !== 'object') throw new Error(`${where}: not an object`)
  const keyName = key.key_name
  const keyNamespace = key.key_namespace
  switch (key.type) {
    case 'raw-aes': {
      const material = Buffer.from(key.material_b64 || '', 'base64')
      const wrappingSuite = aesWrapping[material.length]
      if (!wrappingSuite) throw new Error(`${where}.material_b64: ${material.length} bytes, want 16, 24 or 32`)
      // utf8Sorting: serialise the context (the wrapping AAD) in UTF-8 byte
      // order as the specification requires; the default uses localeCompare.
      return new RawAesKeyringNode({
        keyName,
        keyNamespace,
        unencryptedMasterKey: new Uint8Array(material),
        wrappingSuite,
        utf8Sorting: true,
      })
    }
    case 'raw-rsa': {
      const pad = rsaPadding[key.padding]
      if (!pad) throw new Error(`${where}.padding: unknown padding ${JSON.stringify(key.padding)}`)
      const rsaKey = {}
      if (key.public_key_pem) rsaKey.publicKey = key.public_key_pem
      if (key.private_key_pem) rsaKey.privateKey = key.private_key_pem
      return new RawRsaKeyringNode({ keyName, keyNamespace, rsaKey, ...pad })
    }
    default:
      throw new Error(`${where}.type: unknown key type ${JSON.stringify(key.type)}`)
  }
}

function buildKeyring(keys) {
  if (!Array.isArray(keys) || keys.length === 0) throw new Error('keys: want a non-empty list')
  const rings = keys.map(keyring)
  if (rings.length === 1) return rings[0]
  return new MultiKeyringNode({ generator: rings[0], children: rings.slice(1) })
}

function parseSuite(s) {
  if (s === undefined || s === null || s === '') return undefined
  const n = typeof s === 'number' ? s : parseInt(String(s).replace(/^0x/i, ''), 16)
  if (!Number.isInteger(n)) throw new Error(`suite: cannot parse ${JSON.stringify(s)}`)
  return n
}

function policyFor(name, fallback) {
  if (!name) return fallback
  const p = CommitmentPolicy[String(name).toUpperCase().replace(/-/g, '_')]
  if (!p) throw new Error(`commitment_policy: unknown policy ${JSON.stringify(name)}`)
  return p
}

function hex(n) {
  return '0x' + n.toString(16).toUpperCase().padStart(4, '0')
}

function b64(u8) {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64')
}

function summary(header) {
  const out = {
    suite: hex(header.suiteId),
    version: header.version,
    message_id_b64: b64(header.messageId),
    frame_length: header.frameLength,
    content_type: header.contentType,
    context: header.encryptionContext,
    edks: header.encryptedDataKeys.map((k) => ({
      provider_id: k.providerId,
      provider_info_b64: k.rawInfo ? b64(k.rawInfo) : Buffer.from(k.providerInfo, 'utf8').toString('base64'),
      ciphertext_b64: b64(k.encryptedDataKey),
    })),
  }
  if (header.suiteData) out.commit_key_b64 = b64(header.suiteData)
  return out
}

async function runJob(job) {
  const ring = buildKeyring(job.keys)
  const input = fs.readFileSync(job.in)
  const maxEdks = job.max_encrypted_data_keys || false
  if (job.op === 'encrypt') {
    const suiteId = parseSuite(job.suite)
    const v1 = suiteId !== undefined && suiteId < 0x0400
    const policy = policyFor(
      job.commitment_policy,
      v1 ? CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT : CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    )
    const { encrypt } = buildClient({ commitmentPolicy: policy, maxEncryptedDataKeys: maxEdks })
    const opts = { encryptionContext: job.context || {} }
    if (suiteId !== undefined) opts.suiteId = suiteId
    if (job.frame_length !== undefined && job.frame_length !== null) opts.frameLength = job.frame_length
    const { result, messageHeader } = await encrypt(ring, input, opts)
    fs.writeFileSync(job.out, result)
    return summary(messageHeader)
  }
  if (job.op === 'decrypt') {
    const policy = policyFor(job.commitment_policy, CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    const { decrypt } = buildClient({ commitmentPolicy: policy, maxEncryptedDataKeys: maxEdks })
    const { plaintext, messageHeader } = await decrypt(ring, input)
    fs.writeFileSync(job.out, plaintext)
    return summary(messageHeader)
  }
  throw new Error(`op: unknown operation ${JSON.stringify(job.op)}`)
}

async function batch(jobsFile, resultsFile) {
  const { jobs } = JSON.parse(fs.readFileSync(jobsFile, 'utf8'))
  if (!Array.isArray(jobs)) throw new Error(`${jobsFile}: want {"jobs": [...]}`)
  const results = []
  for (const job of jobs) {
    try {
      results.push({ id: job.id, ok: true, ...(await runJob(job)) })
    } catch (e) {
      try {
        if (job.out) fs.rmSync(job.out, { force: true })
      } catch (_) {}
      results.push({ id: job.id, ok: false, error: String((e && e.message) || e) })
    }
  }
  const out = JSON.stringify({ results })
  if (resultsFile) fs.writeFileSync(resultsFile, out)
  else process.stdout.write(out + '\n')
}

function parseArgs(argv) {
  const flags = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`)
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
    flags[a.slice(2)] = argv[++i]
  }
  return flags
}

const usage = `usage:
  node peer.js encrypt --in FILE --out FILE --keys KEYSPEC.json [--suite 0x0578] [--frame 4096] [--context JSON]
  node peer.js decrypt --in FILE --out FILE --keys KEYSPEC.json [--policy P] [--max-edks N]
  node peer.js batch --jobs JOBS.json [--results RESULTS.json]`

async function main() {
  const [op, ...rest] = process.argv.slice(2)
  const f = parseArgs(rest)
  if (op === 'batch') {
    if (!f.jobs) throw new Error('batch: --jobs is required')
    return batch(f.jobs, f.results)
  }
  if (op !== 'encrypt' && op !== 'decrypt') throw new Error(usage)
  for (const req of ['in', 'out', 'keys']) if (!f[req]) throw new Error(`${op}: --${req} is required`)
  const job = {
    op,
    in: f.in,
    out: f.out,
    keys: JSON.parse(fs.readFileSync(f.keys, 'utf8')).keys,
    suite: f.suite,
    frame_length: f.frame === undefined ? undefined : Number(f.frame),
    context: f.context ? JSON.parse(f.context) : undefined,
    commitment_policy: f.policy,
    max_encrypted_data_keys: f['max-edks'] ? Number(f['max-edks']) : undefined,
  }
  const info = await runJob(job)
  process.stdout.write(JSON.stringify(info) + '\n')
}

main().catch((e) => {
  process.stderr.write(`peer.js: ${(e && e.message) || e}\n`)
  process.exit(1)
})
