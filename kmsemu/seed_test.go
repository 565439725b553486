package kmsemu_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

func TestExampleSeed(t *testing.T) {
	seed, err := kmsemu.LoadSeed("testdata/keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	emu, err := kmsemu.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ident, region, want string }{
		{"alias/encjob-demo", "", arn(acct, east, "1234abcd-12ab-34cd-56ef-1234567890ab")},
		{"alias/encjob-global", "ap-southeast-2", arn(acct, "ap-southeast-2", "mrk-1234abcd12ab34cd56ef1234567890ab")},
		{"alias/encjob-global", west, arn(acct, west, "mrk-1234abcd12ab34cd56ef1234567890ab")},
		{"alias/encjob-eu", west, arn(acct, west, "0987dcba-09fe-87dc-65ba-ab0987654321")},
		{arn(otherAcct, east, "11112222-3333-4444-5555-666677778888"), east, arn(otherAcct, east, "11112222-3333-4444-5555-666677778888")},
		{"alias/encjob-encrypt-only", "", arn(acct, east, "22223333-4444-5555-6666-777788889999")},
		{"alias/encjob-disabled", "", arn(acct, east, "33334444-5555-6666-7777-888899990000")},
	} {
		got, err := emu.KeyARN(tc.ident, tc.region)
		if err != nil || got != tc.want {
			t.Errorf("KeyARN(%s, %q) = %s, %v; want %s", tc.ident, tc.region, got, err, tc.want)
		}
	}
	if _, err := emu.KeyARN("alias/encjob-eu", east); err == nil {
		t.Error("KeyARN found an eu-west-1 alias in us-east-1")
	}
	if n := len(emu.Keys()); n != 8 {
		t.Errorf("example seed holds %d regional keys, want 8", n)
	}

	// Declared material is reproducible: a second emulator from the same
	// seed decrypts the first one's ciphertext.
	emu2, err := kmsemu.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	c1 := wrap(kmsemutest.Serve(t, emu)).client(east)
	c2 := wrap(kmsemutest.Serve(t, emu2)).client(east)
	for _, tc := range []struct {
		alias    string
		portable bool
	}{{"alias/encjob-demo", true}, {"alias/encjob-global", false}} {
		blob := must[*kms.EncryptOutput](t)(c1.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(tc.alias), Plaintext: []byte("demo")})).CiphertextBlob
		_, err := c2.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: blob})
		if tc.portable && err != nil {
			t.Errorf("%s (declared material): second emulator cannot decrypt: %v", tc.alias, err)
		}
		if !tc.portable && !isA[types.InvalidCiphertextException](err) {
			t.Errorf("%s (random material): second emulator: %v, want InvalidCiphertextException", tc.alias, err)
		}
	}
}

func TestSeedErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // "line N: field.path" fragments, one per expected error
	}{
		{"unknown field", "keys:\n  - id: 1234abcd-12ab-34cd-56ef-1234567890ab\n    alias: [alias/x]\n", []string{"line 3", "alias"}},
		{"bad account", "account: \"123\"\n", []string{"line 1: account"}},
		{"bad region", "region: Europe\n", []string{"line 1: region"}},
		{"bad key id", "keys:\n  - id: my-key\n", []string{"line 2: keys[0].id"}},
		{"uppercase key id", "keys:\n  - id: 1234ABCD-12ab-34cd-56ef-1234567890ab\n", []string{"line 2: keys[0].id"}},
		{"replicas on a single-region key", "keys:\n  - id: 1234abcd-12ab-34cd-56ef-1234567890ab\n    replicas: [eu-west-1]\n", []string{"line 3: keys[0].replicas"}},
		{"replica in own region", "keys:\n  - id: mrk-1234abcd12ab34cd56ef1234567890ab\n    replicas: [us-east-1]\n", []string{"line 3: keys[0].replicas[0]"}},
		{"duplicate id", "keys:\n  - id: 1234abcd-12ab-34cd-56ef-1234567890ab\n  - id: 1234abcd-12ab-34cd-56ef-1234567890ab\n", []string{"line 3: keys[1].id"}},
		{"duplicate alias", "keys:\n  - aliases: [alias/a]\n  - aliases: [alias/a]\n", []string{"line 3: keys[1].aliases[0]"}},
		{"bad alias", "keys:\n  - aliases: [a, alias/aws/x]\n", []string{"keys[0].aliases[0]", "keys[0].aliases[1]"}},
		{"unknown operation", "keys:\n  - allowedOperations: [Encrypt, Sign]\n", []string{"line 2: keys[0].allowedOperations[1]"}},
		{"bad usage", "keys:\n  - usage: ENCRYPT\n", []string{"line 2: keys[0].usage"}},
		{"short material", "keys:\n  - material: AAEC\n", []string{"line 2: keys[0].material"}},
		{"every error at once", "account: x\nkeys:\n  - id: x\n    usage: y\n", []string{"line 1: account", "line 3: keys[0].id", "line 4: keys[0].usage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kmsemu.ParseSeed([]byte(tc.yaml))
			if err == nil {
				t.Fatal("seed accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestSeedDefaults(t *testing.T) {
	off := false
	emu, err := kmsemu.New(&kmsemu.Seed{Keys: []kmsemu.SeedKey{
		{Aliases: []string{"alias/generated"}},
		{Aliases: []string{"alias/generated-mrk"}, Replicas: []string{west}},
		{Aliases: []string{"alias/off"}, Enabled: &off},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := emu.KeyARN("alias/generated", "")
	if err != nil || !strings.HasPrefix(a, "arn:aws:kms:us-east-1:111122223333:key/") {
		t.Fatalf("generated key %s, %v", a, err)
	}
	m, err := emu.KeyARN("alias/generated-mrk", west)
	if err != nil || !strings.HasPrefix(m, "arn:aws:kms:eu-west-1:111122223333:key/mrk-") {
		t.Fatalf("generated multi-region key %s, %v", m, err)
	}
	v := wrap(kmsemutest.Serve(t, emu))
	md := must[*kms.DescribeKeyOutput](t)(v.client(east).DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/off")})).KeyMetadata
	if md.KeyState != types.KeyStateDisabled {
		t.Fatalf("enabled: false gave state %s", md.KeyState)
	}
	if _, err := kmsemu.New(nil); err != nil {
		t.Fatalf("New(nil): %v", err)
	}
}
