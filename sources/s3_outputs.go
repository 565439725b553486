package sources

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// OutputLister is an optional Destination capability (S3): the outputs
// that exist below the destination, from one listing - a request per
// page of keys instead of a Stat per key. A planner that must learn, for
// many items, whether their output exists lists once. A listing is a
// snapshot: an output that appears after it is caught where it matters,
// by the conditional write at Commit.
type OutputLister interface {
	// ListOutputs calls fn for every object below the destination, in
	// key order, with Key as Create and Stat take it and the listing's
	// size, ETag and modification time (no metadata). It stops at the
	// first error fn returns and returns it (wrapped).
	ListOutputs(ctx context.Context, fn func(Item) error) error
}

// ListOutputs implements OutputLister with ListObjectsV2 over the
// destination's prefix.
func (d *S3Destination) ListOutputs(ctx context.Context, fn func(Item) error) error {
	prefix := d.loc.Key
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/" // as JoinKey joins keys to it
	}
	in := &awss3.ListObjectsV2Input{Bucket: &d.loc.Bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	if d.opt.MaxKeys > 0 {
		in.MaxKeys = &d.opt.MaxKeys
	}
	pg := awss3.NewListObjectsV2Paginator(d.opt.Client, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("destination %s: list: %w", d.loc.Raw, err)
		}
		for _, o := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(o.Key), prefix)
			if !ok || key == "" {
				continue
			}
			it := Item{Key: key, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified), ETag: aws.ToString(o.ETag)}
			it.Print = s3Print(it.ETag, "")
			if err := fn(it); err != nil {
				return fmt.Errorf("destination %s: list: %w", d.loc.Raw, err)
			}
		}
	}
	return nil
}

var _ OutputLister = (*S3Destination)(nil)
