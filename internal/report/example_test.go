package report_test

import (
	"os"
	"strings"

	"github.com/encjob/encjob/internal/report"
)

func ExampleMerge() {
	shard0 := `{"input":"s3://b/a","action":"encrypt","bytes_in":10,"bytes_out":20,"shard":"0/2"}` + "\n"
	shard1 := `{"input":"s3://b/b","action":"error","error":"access denied","shard":"1/2"}` + "\n" +
		`{"input":"s3://b/b","action":"encrypt","bytes_in":5,"bytes_out":9,"shard":"1/2"}` + "\n" // the re-run
	s, err := report.Merge(strings.NewReader(shard0), strings.NewReader(shard1))
	if err != nil {
		panic(err)
	}
	s.WriteText(os.Stdout)
	// Output:
	// 2 items from 2 logs in 2 shards (3 lines, 1 superseded by later lines)
	//   + encrypt   2
	// bytes: 15 B in, 29 B out
	// result: ok
}
