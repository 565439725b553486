#!/usr/bin/env node
// Test peer for encjob's hierarchical keyring interop tests: the AWS
// Encryption SDK for JavaScript's AWS KMS Hierarchical keyring
// (KmsHierarchicalKeyRingNode over BranchKeyStoreNode, from
// @aws-crypto/kms-keyring-node and @aws-crypto/branch-keystore-node, both
// re-exported by @aws-crypto/client-node).
//
//   node hierarchy.js JOB.json
//
// JOB is {"op": "encrypt"|"decrypt", "in", "out", "table", "logical_name",
// "kms_key", "branch_key_id", "kms_endpoint", "ddb_endpoint", "region",
// "context"}. Credentials come from AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY. Exit status 0 on success; the error on stderr
// otherwise.
'use strict'

const fs = require('fs')
const {
  buildClient,
  CommitmentPolicy,
  KmsHierarchicalKeyRingNode,
  BranchKeyStoreNode,
} = require('@aws-crypto/client-node')
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb')
const { KMSClient } = require('@aws-sdk/client-kms')

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  const kmsClient = new KMSClient({ region: job.region, endpoint: job.kms_endpoint })
  const ddbClient = new DynamoDBClient({ region: job.region, endpoint: job.ddb_endpoint })
  const keyStore = new BranchKeyStoreNode({
    logicalKeyStoreName: job.logical_name,
    storage: { ddbTableName: job.table, ddbClient },
    keyManagement: { kmsClient },
    kmsConfiguration: { identifier: job.kms_key },
  })
  const keyring = new KmsHierarchicalKeyRingNode({ branchKeyId: job.branch_key_id, keyStore, cacheLimitTtl: 60 })
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
  const input = fs.readFileSync(job.in)
  if (job.op === 'encrypt') {
    const { result } = await encrypt(keyring, input, { encryptionContext: job.context || {} })
    fs.writeFileSync(job.out, result)
  } else if (job.op === 'decrypt') {
    const { plaintext } = await decrypt(keyring, input)
    fs.writeFileSync(job.out, plaintext)
  } else {
    throw new Error('unknown op ' + job.op)
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e))
  process.exit(1)
})
