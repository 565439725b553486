package interop_test

import "errors"

func isErr(err, target error) bool { return errors.Is(err, target) }

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
