// Package keyring holds the local keyrings of encjob: raw AES, raw RSA and
// the multi-keyring (a key group), all wire-compatible with the raw keyrings
// and master keys of the official AWS Encryption SDKs.
//
// A keyring wraps a message's data key on encrypt (OnEncrypt appends one
// encrypted data key, generating the data key first when the materials have
// none) and unwraps it on decrypt (OnDecrypt tries the encrypted data keys
// it recognises). When no key of a keyring can unwrap any of the encrypted
// data keys, OnDecrypt returns an error wrapping crypto.ErrNoMatchingKey, so
// a caller may try another keyring; any other error is fatal for the message.
//
// Keyrings are immutable after construction and safe for concurrent use.
// Errors never contain key material.
//
// The helpers in keyfile.go load wrapping keys from files: raw or base64
// AES keys, and PEM RSA keys (PKCS#8, PKCS#1, SubjectPublicKeyInfo).
package keyring
