// Package policy evaluates an EncryptionPolicy against the items of its
// sources: Check audits them (headers only, no decryption and no KMS call),
// Explain says which rule applies to a location and why, and Plan computes
// the reconciliation that `encjob apply` runs to make every item comply.
//
// # Rules
//
// Every item of the policy's sources has a location: the source path as
// written in the policy joined with the item's key ("secrets/prod/db.env",
// "s3://bucket/config/prod/a.json"). The first rule with a pattern matching
// the location applies, as in sops' creation_rules. An item no rule matches
// is outside the policy; an item an exempt rule matches is left alone.
// Neither is a violation.
//
// An item satisfies its rule when all of these hold:
//   - it is an ESDK message (its header parses);
//   - one of its encrypted data keys is under the rule's key group
//     (keygroup.Group.Holds: raw keys by namespace and name, AWS KMS keys by
//     key ARN, multi-Region replicas included);
//   - every pair of the rule's requireContext is in its encryption context
//     (a nil value: the key is present with any value);
//   - its suite is the rule's algorithm (the default suite when unset);
//   - the suite is committing if requireCommitting, signed if
//     requireSigned.
//
// # No KMS call
//
// Check never calls KMS: an aws-kms key group is matched by the key ARNs it
// lists. A group that names keys by alias or bare key id cannot be checked
// offline; its items are reported as violations that say so, unless
// Options.ResolveAliases allows one DescribeKey call per such key.
//
// # Reconciliation
//
// Plan turns every non-compliant item into work for the ordinary planner
// and executor, in parts: one part per (rule, action, decrypt key group).
//   - An ESDK message that violates its rule is re-encrypted in place
//     (operation reencrypt, fresh data key) under the rule's key group and
//     suite, its encryption context kept with the rule's required pairs
//     (those with a value) added or overwritten. It is decrypted with the
//     first of the policy's decryptKeyGroups, in order, that holds one of
//     its data keys (decided from the header); the part's job names that
//     group as decrypt.keyGroup.
//     With the rule's reencrypt.mode rewrap, a message whose only
//     violations are key group or context is rewrapped instead (its data
//     key and body kept; its own part, "rule-N/rewrap-from-G"); a suite
//     violation always takes a full re-encryption.
//     reencrypt.require makes the rule's kind a demand (see History, read
//     from metadata logs, since headers cannot tell the two apart): with
//     require rewrap, an item only a full re-encryption could fix (a suite
//     violation, message format v2 without the opt-in) or whose current
//     message a full re-encryption wrote is an error item; with require
//     full, an item whose current message a rewrap wrote is a violation
//     (code last-change) and is re-encrypted in full.
//   - An item that is not an ESDK message is encrypted in place under the
//     rule (operation encrypt, same name, context = the rule's pairs with a
//     value): a matching non-exempt rule means "must be encrypted", and
//     apply makes Check pass. Put an exempt rule first for files that must
//     stay plaintext.
//   - An item that cannot be made compliant is an error item with the
//     reason: a required context key without a value that the item lacks
//     (apply cannot invent one), or no decrypt key group holding any of
//     its data keys.
//   - Compliant items are unchanged; exempt, unmatched and skipped items
//     are skip. None of them is in a part, so a policy whose items all
//     comply builds no runtime at all: applying it again makes no KMS
//     call (with key ARNs; a group named by alias costs one DescribeKey per
//     alias per run).
//
// Each part is a real spec.Job (in place, the policy's key groups, commitment
// policy, caching, execution, s3 and kms settings) with its own
// planner.Runtime and planner.Plan, built by planner.BuildItems from the
// items Check listed; Reconciliation.Apply runs the parts one after the
// other through executor.Apply.
package policy
