package sources

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"
)

// Remover is an optional Destination capability (local directories and
// S3): Remove deletes the output at key. A key that does not exist is
// not an error, so a caller can remove what an earlier run may or may
// not have written (a commit marker it is about to rewrite). Keys are
// checked as for Create: a key leaving the root fails with *EscapeError
// (ErrEscapes), and encjob's state directory cannot be removed through it.
type Remover interface {
	Remove(ctx context.Context, key string) error
}

var (
	_ Remover = (*LocalDestination)(nil)
	_ Remover = (*S3Destination)(nil)
)

func checkRemoveKey(key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if key == StateDir || strings.HasPrefix(key, StateDir+"/") {
		return &EscapeError{Key: key, Reason: "inside encjob's state directory " + StateDir}
	}
	return nil
}

// Remove unlinks the file at key, confined to the root as Create is (the
// directories are opened one component at a time, never following a
// symlink), under the root's lock, and syncs the directory. A directory
// at key is not removed.
func (d *LocalDestination) Remove(ctx context.Context, key string) error {
	if err := checkRemoveKey(key); err != nil {
		return err
	}
	p, _ := d.Path(key)
	if err := d.st.lock(); err != nil {
		return err
	}
	d.st.mu.Lock()
	defer d.st.mu.Unlock()
	dir, err := d.st.walkDir(dirKey(key), false, nil)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		var ee *EscapeError
		if errors.As(err, &ee) {
			ee.Key = key
			return ee
		}
		return fmt.Errorf("remove %s: %w", p, err)
	}
	defer d.st.ops.close(dir)
	st, err := d.st.ops.lstat(dir, baseKey(key))
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return fmt.Errorf("remove %s: %w", p, err)
	case st.isDir():
		return fmt.Errorf("remove %s: is a directory", p)
	}
	if err := d.st.unlinkSynced(dir, baseKey(key)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// Remove deletes the object at key (DeleteObject: S3 answers success for
// a missing key too).
func (d *S3Destination) Remove(ctx context.Context, key string) error {
	if err := checkRemoveKey(key); err != nil {
		return err
	}
	full, _ := d.full(key)
	if _, err := d.opt.Client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &d.loc.Bucket, Key: &full}); err != nil && !isNotFound(err) {
		return fmt.Errorf("s3://%s/%s: delete: %w", d.loc.Bucket, full, err)
	}
	return nil
}
