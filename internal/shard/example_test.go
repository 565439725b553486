package shard_test

import (
	"fmt"

	"github.com/encjob/encjob/internal/shard"
)

func Example() {
	// In pod 3 of an Indexed Job with 8 completions:
	env := map[string]string{"JOB_COMPLETION_INDEX": "3"}
	s, ok, err := shard.FromEnv(func(k string) string { return env[k] }, 8)
	fmt.Println(s, ok, err)

	for _, key := range []string{"s3://acme/a.csv", "s3://acme/b.csv", "s3://acme/j.csv"} {
		fmt.Println(key, shard.Of(key, 8), s.Owns(key))
	}
	// Output:
	// 3/8 true <nil>
	// s3://acme/a.csv 2 false
	// s3://acme/b.csv 4 false
	// s3://acme/j.csv 3 true
}
