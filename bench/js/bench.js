#!/usr/bin/env node
// Benchmark peer: the official AWS Encryption SDK for JavaScript
// (@aws-crypto/client-node, installed in interop/jspeer by
// scripts/setup.d/20-interop.sh), scripted the way a user would: one node
// process looping over the files of a tree with a raw AES keyring.
//
//   node bench.js encrypt|decrypt KEYFILE IN OUT [SUITE_HEX] [LIMIT] [stream]
//
// Files are read, encrypted (or decrypted) with the buffer API and written,
// one after the other; with "stream" each file goes through
// encryptStream/decryptStream between file streams instead (how a large
// file has to be handled). Prints one JSON line:
// {"items","bytes","seconds","vmhwm_kib"} (plaintext bytes; loop time only).
'use strict'

const fs = require('fs')
const path = require('path')
const { pipeline } = require('stream/promises')
const {
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} = require('@aws-crypto/client-node')

function list(root, limit) {
  if (!fs.statSync(root).isDirectory()) return ['']
  const out = []
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? path.join(rel, e.name) : e.name
      if (e.isDirectory()) walk(r)
      else out.push(r)
    }
  }
  walk('')
  out.sort()
  return limit > 0 ? out.slice(0, limit) : out
}

async function main() {
  const [op, keyFile, inRoot, outRoot, suiteHex = '0x0578', limitArg = '0', mode = 'buffer'] = process.argv.slice(2)
  const keyring = new RawAesKeyringNode({
    keyName: 'bench',
    keyNamespace: 'encjob',
    unencryptedMasterKey: new Uint8Array(fs.readFileSync(keyFile)),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  })
  const { encrypt, decrypt, encryptStream, decryptStream } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const suiteId = parseInt(suiteHex, 16)
  const opts = { suiteId, encryptionContext: { tenant: 'acme' } }
  const files = list(inRoot, Number(limitArg))
  let bytes = 0
  const start = process.hrtime.bigint()
  for (const rel of files) {
    const src = rel ? path.join(inRoot, rel) : inRoot
    const dst = rel ? path.join(outRoot, rel) : outRoot
    fs.mkdirSync(path.dirname(dst), { recursive: true })
    if (mode === 'stream') {
      let n = 0
      const count = async function* (s) { for await (const c of s) { n += c.length; yield c } }
      if (op === 'encrypt') {
        await pipeline(fs.createReadStream(src), count, encryptStream(keyring, opts), fs.createWriteStream(dst))
      } else {
        await pipeline(fs.createReadStream(src), decryptStream(keyring), count, fs.createWriteStream(dst))
      }
      bytes += n
    } else if (op === 'encrypt') {
      const pt = fs.readFileSync(src)
      const { result } = await encrypt(keyring, pt, opts)
      fs.writeFileSync(dst, result)
      bytes += pt.length
    } else {
      const { plaintext } = await decrypt(keyring, fs.readFileSync(src))
      fs.writeFileSync(dst, plaintext)
      bytes += plaintext.length
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const vmhwm = Math.round(process.resourceUsage().maxRSS)
  console.log(JSON.stringify({ items: files.length, bytes, seconds, vmhwm_kib: vmhwm }))
}

main().catch((e) => {
  console.error('bench.js:', e && e.message ? e.message : e)
  process.exit(1)
})
