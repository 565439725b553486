package kmsemu_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/kmsemu"
)

func Example() {
	seed, err := kmsemu.ParseSeed([]byte(`
keys:
  - id: mrk-1234abcd12ab34cd56ef1234567890ab
    replicas: [eu-west-1]
    aliases: [alias/app]
`))
	if err != nil {
		panic(err)
	}
	emu, err := kmsemu.New(seed)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()

	client := func(region string) *kms.Client {
		return kms.New(kms.Options{
			Region:       region,
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "any-secret", ""),
			BaseEndpoint: aws.String(srv.URL),
		})
	}
	ctx := context.Background()
	ec := map[string]string{"purpose": "example"}
	dk, err := client("us-east-1").GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String("alias/app"), KeySpec: "AES_256", EncryptionContext: ec,
	})
	if err != nil {
		panic(err)
	}
	// The replica in eu-west-1 decrypts what the primary encrypted.
	out, err := client("eu-west-1").Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		panic(err)
	}
	fmt.Println(aws.ToString(dk.KeyId))
	fmt.Println(aws.ToString(out.KeyId), len(out.Plaintext))
	fmt.Println(emu.CallCount("GenerateDataKey"), emu.CallCount("Decrypt"))
	// Output:
	// arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab
	// arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab 32
	// 1 1
}
