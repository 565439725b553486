package planner

import (
	"github.com/encjob/encjob/internal/job"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// bareRuntime is a runtime with storage and parsed locations only, for
// tests of path derivation and guards (nothing is opened).
func bareRuntime(j *spec.Job, locs ...sources.Location) *Runtime {
	return &Runtime{Job: j, Runtime: &job.Runtime{Locations: locs, Storage: job.NewStorage("", j.S3, job.StorageOptions{})}}
}
