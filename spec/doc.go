// Package spec reads encjob spec files: YAML documents of kind
// EncryptionJob or EncryptionPolicy, turned into typed, validated,
// defaulted Go values. Nothing here runs a job or touches a key.
//
// Loading goes in four steps, all inside Parse / LoadFile:
//
//  1. YAML is parsed into yaml.Node trees (one per document), so every
//     value keeps its line and column.
//  2. ${VAR} references in values are expanded from an Env function
//     (os.LookupEnv by default; tests pass a map).
//  3. Nodes are decoded strictly into Job / Policy: unknown fields,
//     repeated keys and wrong types are errors with a field path.
//  4. Validate checks every field and cross-field rule, then Defaults
//     fills unset fields.
//
// Every problem from every document is returned at once as an ErrorList
// of *Error values carrying a Type, a Kubernetes-style Field path and a
// file Position; on error no documents are returned. Later stages report
// problems against the file through Job.Positions / Document.Positions:
//
//	return j.Positions.Error(spec.ErrorTypeInvalid, "spec.keyGroups.dev.keyFile", f, "no such file")
//
// The include/exclude and policy-rule globs are package pathglob's;
// CompilePattern, Pattern and Filter here are thin aliases, and NewFilter
// reports bad patterns with field paths. REFERENCE.md documents every
// field.
package spec
