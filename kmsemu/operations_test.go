package kmsemu_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestCreateAndDescribeKey(t *testing.T) {
	v := newEnv(t)
	c := v.client(west)
	for _, tc := range []struct {
		name   string
		in     kms.CreateKeyInput
		prefix string
		mrk    bool
	}{
		{"single-region", kms.CreateKeyInput{Description: aws.String("d1")}, "", false},
		{"multi-region", kms.CreateKeyInput{MultiRegion: aws.Bool(true), KeyUsage: types.KeyUsageTypeEncryptDecrypt}, "mrk-", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx(t), &tc.in))
			md := out.KeyMetadata
			id := aws.ToString(md.KeyId)
			if !strings.HasPrefix(id, tc.prefix) || aws.ToString(md.Arn) != arn(acct, west, id) {
				t.Fatalf("created key id %q arn %q", id, aws.ToString(md.Arn))
			}
			if !md.Enabled || md.KeyState != types.KeyStateEnabled || md.KeySpec != types.KeySpecSymmetricDefault ||
				md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || aws.ToString(md.AWSAccountId) != acct || md.CreationDate == nil {
				t.Fatalf("metadata %+v", md)
			}
			if aws.ToBool(md.MultiRegion) != tc.mrk || (tc.mrk && md.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypePrimary) {
				t.Fatalf("multi-region %v, config %+v", aws.ToBool(md.MultiRegion), md.MultiRegionConfiguration)
			}
			for _, ident := range []string{id, aws.ToString(md.Arn)} {
				d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(ident)}))
				if aws.ToString(d.KeyMetadata.Arn) != aws.ToString(md.Arn) || aws.ToString(d.KeyMetadata.Description) != aws.ToString(tc.in.Description) {
					t.Fatalf("DescribeKey(%s) = %+v", ident, d.KeyMetadata)
				}
			}
			// the new key works
			enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}))
			if aws.ToString(enc.KeyId) != aws.ToString(md.Arn) {
				t.Fatalf("Encrypt KeyId %q", aws.ToString(enc.KeyId))
			}
		})
	}
	// CreateKey operates in the request's region only
	if _, err := v.client(east).DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(arn(acct, west, idEU))}); !isA[types.NotFoundException](err) {
		t.Fatalf("eu-west-1 key described in us-east-1: %v", err)
	}
}

func TestDescribeKeyIdentifiers(t *testing.T) {
	v := newEnv(t)
	for _, tc := range []struct {
		region, ident, wantARN string
	}{
		{east, idApp, arn(acct, east, idApp)},
		{east, arn(acct, east, idApp), arn(acct, east, idApp)},
		{east, "alias/app", arn(acct, east, idApp)},
		{east, "arn:aws:kms:us-east-1:111122223333:alias/app", arn(acct, east, idApp)},
		{west, "alias/global", arn(acct, west, idMRK)},
		{west, idEU, arn(acct, west, idEU)},
		{east, arn(otherAcct, east, idOther), arn(otherAcct, east, idOther)},
		{east, idDisabled, arn(acct, east, idDisabled)},
	} {
		t.Run(tc.region+"/"+tc.ident, func(t *testing.T) {
			out := must[*kms.DescribeKeyOutput](t)(v.client(tc.region).DescribeKey(ctx(t), &kms.DescribeKeyInput{
				KeyId: aws.String(tc.ident), GrantTokens: []string{"grant-token-1"},
			}))
			if got := aws.ToString(out.KeyMetadata.Arn); got != tc.wantARN {
				t.Fatalf("arn %s, want %s", got, tc.wantARN)
			}
		})
	}
	t.Run("mrk replica metadata", func(t *testing.T) {
		md := must[*kms.DescribeKeyOutput](t)(v.client(west).DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(idMRK)})).KeyMetadata
		c := md.MultiRegionConfiguration
		if !aws.ToBool(md.MultiRegion) || c == nil || c.MultiRegionKeyType != types.MultiRegionKeyTypeReplica ||
			aws.ToString(c.PrimaryKey.Arn) != arn(acct, east, idMRK) || aws.ToString(c.PrimaryKey.Region) != east ||
			len(c.ReplicaKeys) != 1 || aws.ToString(c.ReplicaKeys[0].Arn) != arn(acct, west, idMRK) {
			t.Fatalf("replica metadata %+v / %+v", md, c)
		}
	})
	t.Run("disabled state", func(t *testing.T) {
		md := must[*kms.DescribeKeyOutput](t)(v.client(east).DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(idDisabled)})).KeyMetadata
		if md.Enabled || md.KeyState != types.KeyStateDisabled {
			t.Fatalf("disabled key: enabled %v state %s", md.Enabled, md.KeyState)
		}
	})
}

func TestListKeys(t *testing.T) {
	v := newEnv(t)
	for _, tc := range []struct {
		region string
		want   []string
	}{
		{east, []string{idApp, idEncOnly, idDisabled, idSign, idScheduled, idMRK}},
		{west, []string{idEU, idMRK}},
		{"ap-south-1", nil},
	} {
		t.Run(tc.region, func(t *testing.T) {
			c := v.client(tc.region)
			// one page
			out := must[*kms.ListKeysOutput](t)(c.ListKeys(ctx(t), &kms.ListKeysInput{}))
			var all []string
			for _, k := range out.Keys {
				if aws.ToString(k.KeyArn) != arn(acct, tc.region, aws.ToString(k.KeyId)) {
					t.Fatalf("entry %s / %s", aws.ToString(k.KeyId), aws.ToString(k.KeyArn))
				}
				all = append(all, aws.ToString(k.KeyId))
			}
			want := slices.Sorted(slices.Values(tc.want))
			if out.Truncated || !slices.Equal(all, want) {
				t.Fatalf("ListKeys = %v (truncated %v), want %v", all, out.Truncated, want)
			}
			// pages of one, through the SDK paginator
			var paged []string
			p := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(1)})
			for p.HasMorePages() {
				page := must[*kms.ListKeysOutput](t)(p.NextPage(ctx(t)))
				if len(page.Keys) > 1 {
					t.Fatalf("page of %d keys with Limit 1", len(page.Keys))
				}
				for _, k := range page.Keys {
					paged = append(paged, aws.ToString(k.KeyId))
				}
			}
			if !slices.Equal(paged, want) {
				t.Fatalf("paginated ListKeys = %v, want %v", paged, want)
			}
		})
	}
}

func TestAliases(t *testing.T) {
	v := newEnv(t)
	c := v.client(east)
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx(t), &kms.CreateAliasInput{AliasName: aws.String("alias/second"), TargetKeyId: aws.String(idApp)}))
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx(t), &kms.CreateAliasInput{AliasName: aws.String("alias/by-arn"), TargetKeyId: aws.String(arn(acct, east, idDisabled))}))

	out := must[*kms.ListAliasesOutput](t)(c.ListAliases(ctx(t), &kms.ListAliasesInput{}))
	got := map[string]string{}
	for _, a := range out.Aliases {
		if aws.ToString(a.AliasArn) != "arn:aws:kms:us-east-1:111122223333:"+aws.ToString(a.AliasName) || a.CreationDate == nil {
			t.Fatalf("alias entry %+v", a)
		}
		got[aws.ToString(a.AliasName)] = aws.ToString(a.TargetKeyId)
	}
	want := map[string]string{"alias/app": idApp, "alias/second": idApp, "alias/by-arn": idDisabled, "alias/global": idMRK}
	if len(got) != len(want) {
		t.Fatalf("ListAliases = %v, want %v", got, want)
	}
	for k, id := range want {
		if got[k] != id {
			t.Fatalf("ListAliases = %v, want %v", got, want)
		}
	}

	filtered := must[*kms.ListAliasesOutput](t)(c.ListAliases(ctx(t), &kms.ListAliasesInput{KeyId: aws.String(arn(acct, east, idApp))}))
	var names []string
	for _, a := range filtered.Aliases {
		names = append(names, aws.ToString(a.AliasName))
	}
	if !slices.Equal(names, []string{"alias/app", "alias/second"}) {
		t.Fatalf("ListAliases(KeyId) = %v", names)
	}

	// pagination with the SDK paginator visits every alias once
	var paged []string
	p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{Limit: aws.Int32(1)})
	for p.HasMorePages() {
		for _, a := range must[*kms.ListAliasesOutput](t)(p.NextPage(ctx(t))).Aliases {
			paged = append(paged, aws.ToString(a.AliasName))
		}
	}
	if len(paged) != len(want) {
		t.Fatalf("paginated aliases %v", paged)
	}

	// the new alias resolves; aliases are regional
	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String("alias/second"), Plaintext: []byte("p")}))
	if aws.ToString(enc.KeyId) != arn(acct, east, idApp) {
		t.Fatalf("Encrypt via new alias used %s", aws.ToString(enc.KeyId))
	}
	if _, err := v.client(west).DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/second")}); !isA[types.NotFoundException](err) {
		t.Fatalf("us-east-1 alias resolved in eu-west-1: %v", err)
	}
}

func TestEncryptDecrypt(t *testing.T) {
	v := newEnv(t)
	c := v.client(east)
	ec := map[string]string{"purpose": "test", "file": "a.txt"}
	for _, tc := range []struct {
		name      string
		keyID     string
		plaintext []byte
		decryptID *string
	}{
		{"key id, no KeyId on decrypt", idApp, []byte("hello"), nil},
		{"alias, KeyId alias on decrypt", "alias/app", []byte("one-block"), aws.String("alias/app")},
		{"key ARN, 4096 bytes", arn(acct, east, idApp), bytes.Repeat([]byte{7}, 4096), aws.String(arn(acct, east, idApp))},
		{"alias ARN, mrk", "arn:aws:kms:us-east-1:111122223333:alias/global", []byte("multi-region plaintext"), aws.String(idMRK)},
		{"other account by ARN", arn(otherAcct, east, idOther), []byte("cross"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx(t), &kms.EncryptInput{
				KeyId: aws.String(tc.keyID), Plaintext: tc.plaintext, EncryptionContext: ec,
				GrantTokens: []string{"t1", "t2"}, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
			}))
			if enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault || bytes.Contains(enc.CiphertextBlob, tc.plaintext) {
				t.Fatalf("Encrypt output alg %s; ciphertext contains the plaintext: %v", enc.EncryptionAlgorithm, bytes.Contains(enc.CiphertextBlob, tc.plaintext))
			}
			dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx(t), &kms.DecryptInput{
				CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: tc.decryptID, GrantTokens: []string{"t1"},
			}))
			if !bytes.Equal(dec.Plaintext, tc.plaintext) || aws.ToString(dec.KeyId) != aws.ToString(enc.KeyId) {
				t.Fatalf("Decrypt returned key %s and %d bytes, want %s and the %d plaintext bytes",
					aws.ToString(dec.KeyId), len(dec.Plaintext), aws.ToString(enc.KeyId), len(tc.plaintext))
			}
		})
	}
	t.Run("random nonce", func(t *testing.T) {
		in := &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("same")}
		a := must[*kms.EncryptOutput](t)(c.Encrypt(ctx(t), in))
		b := must[*kms.EncryptOutput](t)(c.Encrypt(ctx(t), in))
		if bytes.Equal(a.CiphertextBlob, b.CiphertextBlob) {
			t.Fatal("two encryptions of the same plaintext are identical")
		}
	})
}

func TestReEncrypt(t *testing.T) {
	v := newEnv(t)
	c := v.client(east)
	srcEC := map[string]string{"v": "1"}
	dstEC := map[string]string{"v": "2"}
	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("secret"), EncryptionContext: srcEC}))
	re := must[*kms.ReEncryptOutput](t)(c.ReEncrypt(ctx(t), &kms.ReEncryptInput{
		CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC, SourceKeyId: aws.String("alias/app"),
		DestinationKeyId: aws.String("alias/global"), DestinationEncryptionContext: dstEC, GrantTokens: []string{"g"},
	}))
	if aws.ToString(re.SourceKeyId) != arn(acct, east, idApp) || aws.ToString(re.KeyId) != arn(acct, east, idMRK) ||
		re.SourceEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault || re.DestinationEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Fatalf("ReEncrypt output %+v", re)
	}
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: dstEC}))
	if string(dec.Plaintext) != "secret" || aws.ToString(dec.KeyId) != arn(acct, east, idMRK) {
		t.Fatalf("decrypt of re-encrypted blob: key %s", aws.ToString(dec.KeyId))
	}
	// the destination context now binds it
	if _, err := c.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: srcEC}); !isA[types.InvalidCiphertextException](err) {
		t.Fatalf("re-encrypted blob decrypted under the source context: %v", err)
	}
}

func TestGenerateDataKey(t *testing.T) {
	v := newEnv(t)
	c := v.client(east)
	ec := map[string]string{"k": "v"}
	for _, tc := range []struct {
		name string
		in   kms.GenerateDataKeyInput
		want int
	}{
		{"AES_256", kms.GenerateDataKeyInput{KeySpec: types.DataKeySpecAes256}, 32},
		{"AES_128", kms.GenerateDataKeyInput{KeySpec: types.DataKeySpecAes128}, 16},
		{"1 byte", kms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(1)}, 1},
		{"1024 bytes", kms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(1024)}, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.KeyId, in.EncryptionContext, in.GrantTokens = aws.String("alias/app"), ec, []string{"g"}
			out := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx(t), &in))
			if len(out.Plaintext) != tc.want || aws.ToString(out.KeyId) != arn(acct, east, idApp) {
				t.Fatalf("GenerateDataKey: %d bytes from %s", len(out.Plaintext), aws.ToString(out.KeyId))
			}
			dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec}))
			if !bytes.Equal(dec.Plaintext, out.Plaintext) {
				t.Fatal("decrypted data key differs from the generated one")
			}
		})
	}
	t.Run("without plaintext", func(t *testing.T) {
		out := must[*kms.GenerateDataKeyWithoutPlaintextOutput](t)(c.GenerateDataKeyWithoutPlaintext(ctx(t), &kms.GenerateDataKeyWithoutPlaintextInput{
			KeyId: aws.String(idMRK), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec,
		}))
		if aws.ToString(out.KeyId) != arn(acct, east, idMRK) {
			t.Fatalf("KeyId %s", aws.ToString(out.KeyId))
		}
		dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec}))
		if len(dec.Plaintext) != 32 {
			t.Fatalf("data key of %d bytes", len(dec.Plaintext))
		}
	})
}

func TestKeyStateTransitions(t *testing.T) {
	v := newEnv(t)
	c := v.client(east)
	encrypt := func() error {
		_, err := c.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p")})
		return err
	}
	state := func() types.KeyState {
		return must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(idApp)})).KeyMetadata.KeyState
	}
	blob := must[*kms.EncryptOutput](t)(c.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p")})).CiphertextBlob

	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx(t), &kms.DisableKeyInput{KeyId: aws.String(idApp)}))
	if err := encrypt(); !isA[types.DisabledException](err) || state() != types.KeyStateDisabled {
		t.Fatalf("after DisableKey: Encrypt error %v, state %s", err, state())
	}
	must[*kms.EnableKeyOutput](t)(c.EnableKey(ctx(t), &kms.EnableKeyInput{KeyId: aws.String(arn(acct, east, idApp))}))
	if err := encrypt(); err != nil || state() != types.KeyStateEnabled {
		t.Fatalf("after EnableKey: Encrypt error %v, state %s", err, state())
	}

	before := time.Now()
	sched := must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx(t), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(idApp), PendingWindowInDays: aws.Int32(7)}))
	if aws.ToString(sched.KeyId) != arn(acct, east, idApp) || sched.KeyState != types.KeyStatePendingDeletion ||
		aws.ToInt32(sched.PendingWindowInDays) != 7 || sched.DeletionDate == nil || !sched.DeletionDate.After(before.Add(6*24*time.Hour)) {
		t.Fatalf("ScheduleKeyDeletion output %+v", sched)
	}
	md := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(idApp)})).KeyMetadata
	if md.Enabled || md.KeyState != types.KeyStatePendingDeletion || md.DeletionDate == nil {
		t.Fatalf("pending-deletion metadata %+v", md)
	}
	if _, err := c.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: blob}); !isA[types.KMSInvalidStateException](err) {
		t.Fatalf("Decrypt under a key pending deletion: %v", err)
	}
	if _, err := c.EnableKey(ctx(t), &kms.EnableKeyInput{KeyId: aws.String(idApp)}); !isA[types.KMSInvalidStateException](err) {
		t.Fatalf("EnableKey of a key pending deletion: %v", err)
	}
	// the default window is 30 days
	s30 := must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx(t), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(idScheduled)}))
	if aws.ToInt32(s30.PendingWindowInDays) != 30 {
		t.Fatalf("default window %d", aws.ToInt32(s30.PendingWindowInDays))
	}
}

func TestMultiRegionKey(t *testing.T) {
	v := newEnv(t)
	eastC, westC := v.client(east), v.client(west)
	ec := map[string]string{"region": "any"}
	enc := must[*kms.EncryptOutput](t)(eastC.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(arn(acct, east, idMRK)), Plaintext: []byte("mrk data"), EncryptionContext: ec}))
	gdk := must[*kms.GenerateDataKeyOutput](t)(westC.GenerateDataKey(ctx(t), &kms.GenerateDataKeyInput{KeyId: aws.String("alias/global"), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}))
	for _, tc := range []struct {
		name    string
		client  *kms.Client
		blob    []byte
		keyID   *string
		wantARN string
		want    []byte
	}{
		{"east to west, no KeyId", westC, enc.CiphertextBlob, nil, arn(acct, west, idMRK), []byte("mrk data")},
		{"east to west, replica ARN", westC, enc.CiphertextBlob, aws.String(arn(acct, west, idMRK)), arn(acct, west, idMRK), []byte("mrk data")},
		{"east to west, alias", westC, enc.CiphertextBlob, aws.String("alias/global"), arn(acct, west, idMRK), []byte("mrk data")},
		{"west to east, key id", eastC, gdk.CiphertextBlob, aws.String(idMRK), arn(acct, east, idMRK), gdk.Plaintext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := must[*kms.DecryptOutput](t)(tc.client.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: tc.blob, KeyId: tc.keyID, EncryptionContext: ec}))
			if !bytes.Equal(dec.Plaintext, tc.want) || aws.ToString(dec.KeyId) != tc.wantARN {
				t.Fatalf("Decrypt used %s", aws.ToString(dec.KeyId))
			}
		})
	}
	t.Run("primary ARN in the replica region", func(t *testing.T) {
		_, err := westC.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(arn(acct, east, idMRK)), EncryptionContext: ec})
		if !isA[types.NotFoundException](err) {
			t.Fatalf("us-east-1 ARN used in eu-west-1: %v", err)
		}
	})
	t.Run("single-region key does not follow", func(t *testing.T) {
		blob := must[*kms.EncryptOutput](t)(eastC.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p")})).CiphertextBlob
		if _, err := westC.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: blob}); !isA[types.NotFoundException](err) {
			t.Fatalf("single-region ciphertext decrypted in another region: %v", err)
		}
	})
}

func TestPartitions(t *testing.T) {
	v := newEnv(t)
	c := v.client("cn-north-1")
	md := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx(t), &kms.CreateKeyInput{})).KeyMetadata
	id := aws.ToString(md.KeyId)
	want := "arn:aws-cn:kms:cn-north-1:" + acct + ":key/" + id
	if aws.ToString(md.Arn) != want {
		t.Fatalf("key ARN %s, want %s", aws.ToString(md.Arn), want)
	}
	if _, err := c.DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(want)}); err != nil {
		t.Fatal(err)
	}
	wrong := "arn:aws:kms:cn-north-1:" + acct + ":key/" + id
	if _, err := c.DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(wrong)}); !isA[types.NotFoundException](err) {
		t.Fatalf("ARN in the wrong partition: %v", err)
	}
}
