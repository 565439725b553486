package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Loader reads spec files. The zero Loader reads the process environment
// and checks algorithm and commitment-policy names against this
// package's built-in lists.
type Loader struct {
	// Env resolves ${VAR}; nil means os.LookupEnv.
	Env Env
	// Validators replace the built-in name checks; see Validators.
	Validators Validators
}

// maxNodes bounds the YAML nodes (aliases expanded) one file may make us
// visit, so hostile input costs bounded work.
const maxNodes = 1 << 18

// maxFileSize bounds the size of one spec file.
const maxFileSize = 16 << 20

// maxExpandedBytes bounds the scalar bytes one file decodes to, aliases
// expanded: a node budget alone lets a few aliases of a large scalar
// (billion laughs with long strings) become gigabytes once the job is
// copied, hashed or printed.
const maxExpandedBytes = 64 << 20

// LoadFile reads, interpolates, decodes, validates and defaults every
// document of the file at path. On any problem it returns no documents
// and an ErrorList with every error found; env may be nil (os.LookupEnv).
func LoadFile(path string, env Env) ([]Document, error) {
	return (&Loader{Env: env}).LoadFile(path)
}

// Parse is LoadFile for data already in memory; name is used in
// positions (usually the file name).
func Parse(name string, data []byte, env Env) ([]Document, error) {
	return (&Loader{Env: env}).Parse(name, data)
}

// LoadFile is the package-level LoadFile with this loader's settings.
func (l *Loader) LoadFile(path string) ([]Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("spec: read %s: %w", path, err)
	}
	return l.Parse(path, data)
}

// Parse is the package-level Parse with this loader's settings.
func (l *Loader) Parse(name string, data []byte) ([]Document, error) {
	if len(data) > maxFileSize {
		// Pointed at where the file crosses the limit.
		line, col := lineCol(data, maxFileSize)
		return nil, ErrorList{{Type: ErrorTypeInvalid, Detail: fmt.Sprintf("file larger than %d bytes", maxFileSize), Pos: Position{File: name, Line: line, Column: col}}}
	}
	env := l.Env
	if env == nil {
		env = os.LookupEnv
	}
	d := &decoder{file: name, env: env, budget: maxNodes, bytes: maxExpandedBytes}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []Document
	names := map[string]Position{}
	for {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.errs = append(d.errs, syntaxError(name, data, err))
			break
		}
		if len(root.Content) == 0 || root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null" {
			continue // empty document (e.g. a trailing ---)
		}
		doc, ok := d.document(&root, &l.Validators)
		if !ok {
			continue
		}
		key := doc.Kind + "/" + doc.Metadata.Name
		if doc.Metadata.Name != "" {
			if _, dup := names[key]; dup {
				d.errs = append(d.errs, d.errAt(doc.Positions, Duplicate(NewPath("metadata", "name"), doc.Metadata.Name)))
			}
			names[key] = doc.Pos
		}
		docs = append(docs, doc)
		if d.budget <= 0 {
			break
		}
	}
	if len(d.errs) == 0 && len(docs) == 0 {
		// Empty, only comments, only "---" or null: validate would call
		// it ok while plan and apply refuse it, so it is an error here,
		// for every command alike.
		d.errs = append(d.errs, &Error{Type: ErrorTypeRequired, Detail: "the file holds no document: want an EncryptionJob or EncryptionPolicy (apiVersion, kind, metadata, spec)",
			Pos: Position{File: name, Line: 1, Column: 1}})
	}
	if d.overBudget != nil {
		// Decoding stopped part-way: what else was found says nothing.
		return nil, ErrorList{d.overBudget}
	}
	if len(d.errs) > 0 {
		d.errs.sortByPos()
		return nil, d.errs
	}
	for i := range docs {
		if docs[i].Job != nil {
			docs[i].Job.Defaults()
		}
		if docs[i].Policy != nil {
			docs[i].Policy.Defaults()
		}
	}
	return docs, nil
}

type decoder struct {
	file      string
	env       Env
	budget    int
	bytes     int // scalar bytes left (maxExpandedBytes), aliases expanded
	errs      ErrorList
	pos       func(*yaml.Node) Position // set per document
	positions *Positions
	badFields map[string]bool // fields with decode errors: validation skips them
	interpErr map[string]bool
	alias     *yaml.Node // the outermost alias being expanded: budget errors point at it
	// overBudget is the error of a budget (nodes, bytes) run out: the
	// only one reported, since decoding stopped where it ran out.
	overBudget *Error
}

// budgetPos is where a budget error about node n points: at the alias
// that led to it, if any, since that is the line to change.
func (d *decoder) budgetPos(n *yaml.Node) Position {
	if d.alias != nil {
		n = d.alias
	}
	return d.pos(n)
}

// spend charges one node, n, against the file's budget; the error points
// at n, the node (or alias) that went past it.
func (d *decoder) spend(n *yaml.Node) bool {
	d.budget--
	if d.budget == 0 {
		d.overBudget = &Error{Type: ErrorTypeInvalid, Detail: fmt.Sprintf("document too large or too many aliases (more than %d nodes)", maxNodes), Pos: d.budgetPos(n)}
		d.errs = append(d.errs, d.overBudget)
	}
	return d.budget > 0
}

// spendBytes charges the n decoded scalar bytes of node at against the
// file's budget; at is the alias when the scalar is reached through one.
func (d *decoder) spendBytes(at *yaml.Node, n int) bool {
	if d.bytes < 0 {
		return false
	}
	d.bytes -= n
	if d.bytes < 0 {
		d.overBudget = &Error{Type: ErrorTypeInvalid, Detail: fmt.Sprintf("document expands to more than %d bytes of values (aliases expanded)", maxExpandedBytes), Pos: d.budgetPos(at)}
		d.errs = append(d.errs, d.overBudget)
		return false
	}
	return true
}

func (d *decoder) errAt(ps *Positions, e *Error) *Error {
	if !e.Pos.IsValid() {
		e.Pos = ps.Of(e.Field)
	}
	return e
}

func (d *decoder) fail(n *yaml.Node, path *Path, t ErrorType, bad any, detail string) {
	d.errs = append(d.errs, &Error{Type: t, Field: path.String(), BadValue: bad, Detail: detail, Pos: d.pos(n)})
	d.badFields[path.String()] = true
}

// document decodes one YAML document; ok is false when it could not be
// decoded far enough to return.
func (d *decoder) document(root *yaml.Node, v *Validators) (Document, bool) {
	ps := &Positions{file: d.file, m: map[string]Position{}}
	d.positions = ps
	d.pos = func(n *yaml.Node) Position { return Position{File: d.file, Line: n.Line, Column: n.Column} }
	d.badFields = map[string]bool{}
	d.interpErr = map[string]bool{}
	body := root.Content[0]
	doc := Document{Pos: d.pos(body), Positions: ps}
	ps.m[""] = doc.Pos
	if body.Kind != yaml.MappingNode {
		d.fail(body, nil, ErrorTypeInvalid, nil, "a document must be a mapping with apiVersion, kind, metadata and spec")
		return doc, false
	}
	d.interpolateNode(body, nil, map[*yaml.Node]bool{})

	var specNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, val := body.Content[i], body.Content[i+1]
		name := k.Value
		p := NewPath(name)
		if seen[name] {
			d.fail(k, p, ErrorTypeDuplicate, name, "the key appears twice in this mapping")
			continue
		}
		seen[name] = true
		ps.m[p.String()] = d.pos(val)
		switch name {
		case "apiVersion":
			d.decode(val, reflect.ValueOf(&doc.APIVersion).Elem(), p)
		case "kind":
			d.decode(val, reflect.ValueOf(&doc.Kind).Elem(), p)
		case "metadata":
			d.decode(val, reflect.ValueOf(&doc.Metadata).Elem(), p)
		case "spec":
			specNode = val
		default:
			d.fail(k, p, ErrorTypeUnknown, name, "a document has only apiVersion, kind, metadata and spec")
		}
	}
	var errs ErrorList
	switch {
	case !seen["apiVersion"]:
		errs = append(errs, Required(NewPath("apiVersion"), "write apiVersion: "+APIVersion))
	case doc.APIVersion != APIVersion && !d.badFields["apiVersion"]:
		errs = append(errs, NotSupported(NewPath("apiVersion"), doc.APIVersion, []string{APIVersion}))
	}
	errs = append(errs, validateMetadata(&doc.Metadata, seen["metadata"])...)
	specPath := NewPath("spec")
	switch doc.Kind {
	case KindJob:
		doc.Job = &Job{Positions: ps}
		if specNode != nil {
			d.decode(specNode, reflect.ValueOf(doc.Job).Elem(), specPath)
		}
	case KindPolicy:
		doc.Policy = &Policy{Positions: ps}
		if specNode != nil {
			d.decode(specNode, reflect.ValueOf(doc.Policy).Elem(), specPath)
		}
	case "":
		if !d.badFields["kind"] {
			errs = append(errs, Required(NewPath("kind"), "write kind: "+KindJob+" or kind: "+KindPolicy))
		}
	default:
		errs = append(errs, NotSupported(NewPath("kind"), doc.Kind, []string{KindJob, KindPolicy}))
	}
	if (doc.Job != nil || doc.Policy != nil) && specNode == nil {
		errs = append(errs, Required(specPath, ""))
	} else if doc.Job != nil {
		errs = append(errs, doc.Job.Validate(v)...)
	} else if doc.Policy != nil {
		errs = append(errs, doc.Policy.Validate(v)...)
	}
	for _, e := range errs {
		if d.shadowed(e.Field) {
			continue // a decode error already covers this field
		}
		d.errs = append(d.errs, d.errAt(ps, e))
	}
	return doc, true
}

// shadowed reports whether field or one of its parents failed to decode
// or interpolate (its value is then meaningless to validate).
func (d *decoder) shadowed(field string) bool {
	for f := field; ; f = parentField(f) {
		if d.badFields[f] || d.interpErr[f] {
			return true
		}
		if f == "" {
			return false
		}
	}
}

// scalarSetter is implemented by types with their own scalar syntax.
type scalarSetter interface{ setScalar(string) error }

// decode strictly decodes n into v, recording positions and errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path *Path) {
	if !d.spend(n) {
		return
	}
	at := n
	if n.Kind == yaml.AliasNode && d.alias == nil {
		d.alias = n
		defer func() { d.alias = nil }()
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		d.positions.m[path.String()] = d.pos(n)
		n = n.Alias
	} else {
		d.positions.m[path.String()] = d.pos(n)
	}
	if d.interpErr[path.String()] {
		return
	}
	if n.Kind == yaml.ScalarNode && !d.spendBytes(at, len(n.Value)) {
		return
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	if v.Kind() == reflect.Pointer {
		if isNull {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if isNull {
		return // null leaves the field unset
	}
	if s, ok := v.Addr().Interface().(scalarSetter); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, ErrorTypeInvalid, nil, "want a scalar value, not a "+kindName(n))
			return
		}
		if err := s.setScalar(n.Value); err != nil {
			d.fail(n, path, ErrorTypeInvalid, n.Value, err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "node"
}

// structFields maps yaml names to field indexes (fields tagged "-" and
// untagged fields are not decodable).
func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func unknownDetail(k string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		if strings.EqualFold(n, k) || editDistance(strings.ToLower(n), strings.ToLower(k)) <= 2 {
			return fmt.Sprintf("did you mean %q?", n)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return "known fields: " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance (bounded inputs: field names).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeStruct decodes a mapping into a struct: known fields only, each once.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path *Path) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrorTypeInvalid, nil, "want a mapping, not a "+kindName(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := path.Child(k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, ErrorTypeInvalid, nil, "mapping keys must be strings")
			continue
		}
		if seen[k.Value] {
			d.fail(k, fp, ErrorTypeDuplicate, k.Value, "the key appears twice in this mapping")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, fp, ErrorTypeUnknown, k.Value, unknownDetail(k.Value, fields))
			continue
		}
		d.decode(val, v.Field(idx), fp)
	}
}

// decodeMap decodes a mapping into a map of string keys, each once.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path *Path) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrorTypeInvalid, nil, "want a mapping, not a "+kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			d.fail(k, path, ErrorTypeInvalid, nil, "mapping keys must be strings")
			continue
		}
		fp := path.Key(k.Value)
		key := reflect.ValueOf(k.Value)
		if v.MapIndex(key).IsValid() {
			d.fail(k, fp, ErrorTypeDuplicate, k.Value, "the key appears twice in this mapping")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, fp)
		v.SetMapIndex(key, elem)
	}
}

// decodeSlice decodes a list.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path *Path) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, ErrorTypeInvalid, nil, "want a list, not a "+kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, s.Index(i), path.Index(i))
	}
	v.Set(s)
}

// decodeScalar decodes a string, boolean, integer or number.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path *Path) {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, ErrorTypeInvalid, nil, "want a string, not a "+kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, ErrorTypeInvalid, nil, "want true or false, not a "+kindName(n))
			return
		}
		switch strings.ToLower(n.Value) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(n, path, ErrorTypeInvalid, n.Value, "want true or false")
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, ErrorTypeInvalid, nil, "want an integer, not a "+kindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.fail(n, path, ErrorTypeInvalid, n.Value, "want an integer")
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, ErrorTypeInvalid, nil, "want a number, not a "+kindName(n))
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, ErrorTypeInvalid, n.Value, "want a number")
			return
		}
		v.SetFloat(f)
	default:
		panic("spec: cannot decode into " + v.Type().String()) // a bug in the spec types
	}
}
