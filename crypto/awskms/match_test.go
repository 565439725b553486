package awskms

import (
	"context"
	"testing"

	"github.com/encjob/encjob/crypto"
)

func TestMatchesEDK(t *testing.T) {
	const (
		key  = "arn:aws:kms:us-east-1:111122223333:key/one"
		mrk  = "arn:aws:kms:us-east-1:111122223333:key/mrk-1"
		mrk2 = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1"
	)
	edk := func(info string) crypto.EncryptedDataKey {
		return crypto.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: []byte(info), Ciphertext: []byte{1}}
	}
	ctx := context.Background()
	strict, err := New(ctx, Config{Keys: []string{key, mrk}, Clients: &fakeProvider{}})
	if err != nil {
		t.Fatal(err)
	}
	disc, err := New(ctx, Config{Discovery: true, DiscoveryFilter: &DiscoveryFilter{Partition: "aws", Accounts: []string{"111122223333"}}, Clients: &fakeProvider{}})
	if err != nil {
		t.Fatal(err)
	}
	offline, err := NewMatcher([]string{key, mrk}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		m    crypto.EDKMatcher
		edk  crypto.EncryptedDataKey
		want bool
	}{
		{"strict own", strict, edk(key), true},
		{"strict mrk replica", strict, edk(mrk2), true},
		{"strict other key", strict, edk("arn:aws:kms:us-east-1:111122223333:key/two"), false},
		{"strict same id other region", strict, edk("arn:aws:kms:eu-west-1:111122223333:key/one"), false},
		{"strict other provider", strict, crypto.EncryptedDataKey{ProviderID: "raw", ProviderInfo: []byte(key)}, false},
		{"strict alias arn", strict, edk("arn:aws:kms:us-east-1:111122223333:alias/one"), false},
		{"offline own", offline, edk(key), true},
		{"offline replica", offline, edk(mrk2), true},
		{"discovery in filter", disc, edk("arn:aws:kms:ap-south-1:111122223333:key/any"), true},
		{"discovery other account", disc, edk("arn:aws:kms:us-east-1:999999999999:key/any"), false},
		{"discovery other partition", disc, edk("arn:aws-cn:kms:cn-north-1:111122223333:key/any"), false},
		{"discovery alias", disc, edk("arn:aws:kms:us-east-1:111122223333:alias/x"), false},
		{"discovery garbage", disc, edk("not an arn"), false},
	} {
		if got := c.m.MatchesEDK(c.edk); got != c.want {
			t.Errorf("%s: MatchesEDK = %v, want %v", c.name, got, c.want)
		}
	}
	for _, bad := range [][]string{{"alias/x"}, {"arn:aws:kms:us-east-1:111122223333:alias/x"}, {"1234"}} {
		if _, err := NewMatcher(bad, false, nil); err == nil {
			t.Errorf("NewMatcher(%q) accepted a key that needs DescribeKey", bad)
		}
	}
}

func TestCodeKindIsTheOneList(t *testing.T) {
	for code, want := range map[string]ErrorKind{
		"NotFoundException": KindNotFound, "ThrottlingException": KindThrottled, "LimitExceededException": KindThrottled,
		"KeyUnavailableException": KindUnavailable, "InvalidKeyUsageException": KindInvalidKeyUsage, "": KindUnknown, "Whatever": KindUnknown,
	} {
		if got := CodeKind(code); got != want {
			t.Errorf("CodeKind(%q) = %v, want %v", code, got, want)
		}
	}
	if !KindThrottled.Transient() || !KindUnavailable.Transient() || KindNotFound.Transient() {
		t.Error("Transient is wrong")
	}
}
