// Package pathglob matches slash-separated paths against rclone-style
// glob patterns and decides include/exclude with ordered filter rules. It
// is the one implementation behind source include/exclude lists, location
// globs (data/**/*.csv, s3://bucket/logs/*/x.gz) and policy rule patterns.
//
// # Patterns
//
//	syntax   matches
//	*        any run of characters except "/"
//	**       any run of characters including "/"; as a whole segment
//	         ("a/**/b", "**/x") it also matches zero directories
//	?        one character except "/"
//	[a-z]    one character of a class; [!a-z] or [^a-z] negates it. A class
//	         never matches "/"; "]" first in a class is literal; "\c"
//	         inside a class is the character c
//	{a,b}    one of the comma-separated alternatives (not nested)
//	\c       the character c literally
//
// A pattern starting with "/" is anchored at the root: "/*.csv" matches
// "a.csv" but not "d/a.csv". Otherwise it matches any complete trailing
// run of segments: "*.csv" matches "a.csv" and "d/e/a.csv"; "e/a.csv"
// matches "d/e/a.csv" but not "de/a.csv". A pattern ending in "/" matches
// everything below that directory: "tmp/" means "tmp/**".
//
// Compile rejects, with an *Error naming the pattern and the cause: the
// empty pattern and "/" alone, patterns over 4096 bytes or not valid
// UTF-8, a trailing "\", unterminated or empty classes, reversed ranges
// ("[z-a]"), classes that could match "/" ("[a/]", "[.-0]"), nested or
// unbalanced braces.
//
// Pattern.Match tests the path exactly as given: a key "/.txt" (an S3 key
// may start with "/") is not "x.txt" with a prefix. Callers that match
// user-written locations normalise them first (the policy matcher drops a
// leading "./" and "/").
//
// # Filters
//
// A Filter is an ordered rule list: the first rule whose pattern matches
// decides. A path that no rule matches is excluded when the list has any
// include rule and included otherwise (rclone's implicit "- **" after
// includes). NewFilter builds the list a spec's separate lists mean:
// every exclude first, then every include, so an exclude wins over an
// overlapping include.
//
// # Differences from aws s3 --include/--exclude
//
// The `aws s3 cp/sync` filters look alike but behave differently:
//
//   - there "*" also matches "/" ("*.csv" there is "**.csv" here);
//   - there patterns match the whole key below the source prefix (no
//     unanchored "any directory" form);
//   - there every filter is evaluated and the LAST matching one wins,
//     and everything is included unless excluded; here the FIRST matching
//     rule wins, and excludes are tested before includes.
//
// So `--exclude "*" --include "*.csv"` is NewFilter([]string{"*.csv"}, nil)
// here, and `--exclude "logs/*"` is an exclude of "/logs/**".
package pathglob
