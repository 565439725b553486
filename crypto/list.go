package crypto

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds of lists taken from a message (EDK labels, per-key failures) in
// error messages and log lines: a header may carry 65535 EDKs of 64 KiB
// each, and no line encjob prints may grow with that.
const (
	ListItems    = 5   // items shown before "… and N more"
	ListItemSize = 200 // bytes shown of one item before "…"
)

// BoundedList joins items with sep, showing at most ListItems of them
// (each cut to ListItemSize bytes) and then "… and N more".
func BoundedList(items []string, sep string) string {
	var b strings.Builder
	for i, s := range items {
		if i == ListItems {
			fmt.Fprintf(&b, "%s… and %d more", sep, len(items)-i)
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(Shorten(s, ListItemSize))
	}
	return b.String()
}

// Shorten cuts s to at most n bytes (not inside a UTF-8 sequence) and
// marks the cut with "…".
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
