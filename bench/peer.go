package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// cmdPeer runs a peer program (bench/js/bench.js, bench/peers/goesdk) that
// prints one JSON line {"items","bytes","seconds","vmhwm_kib"} and turns
// it into a row.
func cmdPeer(args []string) error {
	fs := flag.NewFlagSet("peer", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	note := fs.String("note", "", "what the row measured")
	fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return fmt.Errorf("no peer command")
	}
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %s: %w", *id, strings.Join(argv, " "), err)
	}
	var r struct {
		Items   int64   `json:"items"`
		Bytes   int64   `json:"bytes"`
		Seconds float64 `json:"seconds"`
		VmHWM   int64   `json:"vmhwm_kib"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
		return fmt.Errorf("%s: peer output %q: %w", *id, out.String(), err)
	}
	if r.Items == 0 || r.Seconds <= 0 {
		return fmt.Errorf("%s: peer processed nothing: %s", *id, out.String())
	}
	emit(Row{ID: *id, Items: r.Items, Bytes: r.Bytes, Seconds: r.Seconds, RSSKiB: r.VmHWM, Note: *note})
	return nil
}
