//go:build tools

package tools

import (
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/kms"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/spf13/pflag"
	_ "golang.org/x/sync/errgroup"
	_ "gopkg.in/yaml.v3"
)
