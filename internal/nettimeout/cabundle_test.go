package nettimeout

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

// A custom CA bundle (AWS_CA_BUNDLE, or ca_bundle in a profile, common
// behind corporate TLS proxies) must load with our client: the SDK applies
// it through WithTransportOptions, and a plain *http.Client made loading
// the configuration fail for every KMS and S3 job.
func TestCustomCABundle(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithHTTPClient(Loading(time.Second)),
		config.WithCustomCABundle(bytes.NewReader(bundle)), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatalf("loading the configuration with a CA bundle: %v", err)
	}
	Install(&cfg, time.Second, 2*time.Second)
	got, ok := cfg.HTTPClient.(*SDKClient)
	if !ok {
		t.Fatalf("the configured client is a %T, not ours: the bounds would be lost", cfg.HTTPClient)
	}
	if got.tr.TLSClientConfig == nil || got.tr.TLSClientConfig.RootCAs == nil {
		t.Fatal("the CA bundle did not reach the transport")
	}
	if got.idle != time.Second || got.attempt != 2*time.Second || got.tr.ResponseHeaderTimeout != time.Second {
		t.Fatalf("bounds lost: idle %v attempt %v header %v", got.idle, got.attempt, got.tr.ResponseHeaderTimeout)
	}
	if _, ok := got.c.Transport.(*attemptLimit); !ok {
		t.Fatalf("per-attempt bound lost: transport %T", got.c.Transport)
	}
	var _ http.RoundTripper = got.tr
}
