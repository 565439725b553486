package kmsemu

// Hand-written matchers for the identifier shapes every request checks
// (SigV4 credential scope and signature, key ids, account ids, regions).
// They were regular expressions, which cost the emulator a few percent of
// each call's CPU, and the emulator shares the cores with the client it
// serves in benchmarks. match_test.go checks them against the regular
// expressions they replace.

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isLowerHex(c byte) bool   { return isDigit(c) || ('a' <= c && c <= 'f') }
func isLower(c byte) bool      { return 'a' <= c && c <= 'z' }
func isLowerAlnum(c byte) bool { return isLower(c) || isDigit(c) }

// all reports whether s is n bytes (any length when n < 0), each in class.
func all(s string, n int, class func(byte) bool) bool {
	if n >= 0 && len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !class(s[i]) {
			return false
		}
	}
	return true
}

// isSigDate: ^[0-9]{8}$
func isSigDate(s string) bool { return all(s, 8, isDigit) }

// isSignature: ^[0-9a-f]{64}$
func isSignature(s string) bool { return all(s, 64, isLowerHex) }

// isAccount: ^[0-9]{12}$
func isAccount(s string) bool { return all(s, 12, isDigit) }

// isSignedHeaders: ^[a-z0-9-]+(;[a-z0-9-]+)*$
func isSignedHeaders(s string) bool {
	n := 0 // length of the current name
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ';':
			if n == 0 {
				return false
			}
			n = 0
		case isLowerAlnum(c) || c == '-':
			n++
		default:
			return false
		}
	}
	return n > 0
}

// isRegion: ^[a-z]{2,}(-[a-z0-9]+)*-[0-9]+$ — at least two letters, then
// dash-separated non-empty lowercase alphanumeric parts, the last all
// digits.
func isRegion(s string) bool {
	i := 0
	for i < len(s) && isLower(s[i]) {
		i++
	}
	if i < 2 || i == len(s) {
		return false
	}
	// s[i:] is one or more "-part"; the last part must be digits.
	lastDigits := false
	for i < len(s) {
		if s[i] != '-' {
			return false
		}
		i++
		start, digits := i, true
		for i < len(s) && isLowerAlnum(s[i]) {
			digits = digits && isDigit(s[i])
			i++
		}
		if i == start {
			return false
		}
		lastDigits = digits
	}
	return lastDigits
}

// isUUID: ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
		} else if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

// isMRK: ^mrk-[0-9a-f]{32}$
func isMRK(s string) bool { return len(s) == 36 && s[:4] == "mrk-" && all(s[4:], 32, isLowerHex) }
