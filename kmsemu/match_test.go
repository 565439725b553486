package kmsemu

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions the hand-written matchers replace: each matcher
// must accept exactly what its expression accepts.
var matcherSpecs = []struct {
	name string
	re   *regexp.Regexp
	fn   func(string) bool
}{
	{"sigDate", regexp.MustCompile(`^[0-9]{8}$`), isSigDate},
	{"signature", regexp.MustCompile(`^[0-9a-f]{64}$`), isSignature},
	{"signedHeaders", regexp.MustCompile(`^[a-z0-9-]+(;[a-z0-9-]+)*$`), isSignedHeaders},
	{"account", regexp.MustCompile(`^[0-9]{12}$`), isAccount},
	{"region", regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)*-[0-9]+$`), isRegion},
	{"uuid", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`), isUUID},
	{"mrk", regexp.MustCompile(`^mrk-[0-9a-f]{32}$`), isMRK},
}

var matcherSeeds = []string{
	"", "-", ";", "a", "20261202", "2026120", "202612021", "2026120a",
	strings.Repeat("0", 64), strings.Repeat("a", 64), strings.Repeat("f", 63), strings.Repeat("A", 64), strings.Repeat("g", 64),
	"host", "host;x-amz-date", "content-type;host;x-amz-date;x-amz-target", ";host", "host;", "host;;x", "Host", "x_y", "a-b;c",
	"111122223333", "11112222333", "1111222233334", "11112222333a",
	"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1", "ap-southeast-10", "u-east-1", "us-east-", "us-east", "us--1", "us-1", "us-1-", "US-east-1", "us-east-1a", "us-ea1st-1", "useast1", "us-e-1",
	"1234abcd-12ab-34cd-56ef-1234567890ab", "1234abcd-12ab-34cd-56ef-1234567890aB", "1234abcd12ab-34cd-56ef-1234567890abc", "1234abcd-12ab-34cd-56ef-1234567890a",
	"mrk-0123456789abcdef0123456789abcdef", "mrk-0123456789abcdef0123456789abcde", "mrk-0123456789abcdef0123456789abcdeF", "MRK-0123456789abcdef0123456789abcdef",
}

func checkMatchers(t *testing.T, s string) {
	for _, m := range matcherSpecs {
		if got, want := m.fn(s), m.re.MatchString(s); got != want {
			t.Errorf("%s(%q) = %v, the expression says %v", m.name, s, got, want)
		}
	}
}

func TestMatchersAgreeWithExpressions(t *testing.T) {
	for _, s := range matcherSeeds {
		checkMatchers(t, s)
		// Every one-byte edit of every seed, over a small alphabet that
		// crosses each class boundary.
		for i := 0; i <= len(s); i++ {
			for _, c := range "09afgzAZ-;_/\n\x00\xff" {
				checkMatchers(t, s[:i]+string(c)+s[i:])
				if i < len(s) {
					checkMatchers(t, s[:i]+string(c)+s[i+1:])
				}
			}
			if i < len(s) {
				checkMatchers(t, s[:i]+s[i+1:])
			}
		}
	}
}

func FuzzMatchers(f *testing.F) {
	for _, s := range matcherSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkMatchers(t, s) })
}
