package kmsemu_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

const goodAuth = "AWS4-HMAC-SHA256 Credential=AKIAKMSEMUTEST/20260101/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" +
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// rawPost sends a KMS request without the SDK.
func rawPost(t *testing.T, url, target, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("response %d is not JSON: %q", resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

func TestUnsignedRequestsRejected(t *testing.T) {
	v := newEnv(t)
	t.Run("plain http.Post", func(t *testing.T) {
		resp, err := http.Post(v.srv.URL, "application/x-amz-json-1.1", strings.NewReader(`{"KeyId":"alias/app"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 || m["__type"] != "MissingAuthenticationTokenException" {
			t.Fatalf("unsigned request: %d %v", resp.StatusCode, m)
		}
	})
	for _, tc := range []struct {
		name, auth, want string
	}{
		{"no header", "", "MissingAuthenticationTokenException"},
		{"other scheme", "Bearer abc", "IncompleteSignatureException"},
		{"no signature", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host", "IncompleteSignatureException"},
		{"short scope", "AWS4-HMAC-SHA256 Credential=AKID/us-east-1/kms, SignedHeaders=host, Signature=" + strings.Repeat("a", 64), "IncompleteSignatureException"},
		{"bad date", "AWS4-HMAC-SHA256 Credential=AKID/2026-01-01/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64), "IncompleteSignatureException"},
		{"signature not hex", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=xyz", "IncompleteSignatureException"},
		{"host not signed", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=x-amz-date, Signature=" + strings.Repeat("a", 64), "IncompleteSignatureException"},
		{"other service", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64), "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := rawPost(t, v.srv.URL, "TrentService.DescribeKey", tc.auth, `{"KeyId":"alias/app"}`)
			if status != 400 || m["__type"] != tc.want || m["message"] == "" {
				t.Fatalf("got %d %v, want 400 %s", status, m, tc.want)
			}
		})
	}
	if got := v.emu.CallCount("DescribeKey"); got != 0 {
		t.Fatalf("rejected requests counted as %d DescribeKey calls", got)
	}
}

// TestWireShape checks raw JSON members against the service's shapes, and
// the region routing from the credential scope.
func TestWireShape(t *testing.T) {
	v := newEnv(t)
	status, m := rawPost(t, v.srv.URL, "TrentService.DescribeKey", goodAuth, `{"KeyId":"alias/app"}`)
	md, _ := m["KeyMetadata"].(map[string]any)
	if status != 200 || md["Arn"] != arn(acct, east, idApp) || md["KeyState"] != "Enabled" || md["Enabled"] != true {
		t.Fatalf("DescribeKey: %d %v", status, m)
	}
	if _, isNumber := md["CreationDate"].(float64); !isNumber {
		t.Fatalf("CreationDate %T, want epoch seconds as a JSON number", md["CreationDate"])
	}
	status, m = rawPost(t, v.srv.URL, "TrentService.Encrypt", goodAuth, `{"KeyId":"alias/app","Plaintext":"aGVsbG8="}`)
	if b, err := decodeB64(m["CiphertextBlob"]); status != 200 || err != nil || len(b) == 0 || m["KeyId"] != arn(acct, east, idApp) {
		t.Fatalf("Encrypt: %d %v (%v)", status, m, err)
	}
	west := strings.Replace(goodAuth, "us-east-1", "eu-west-1", 1)
	status, m = rawPost(t, v.srv.URL, "TrentService.DescribeKey", west, `{"KeyId":"`+idEU+`"}`)
	if md, _ := m["KeyMetadata"].(map[string]any); status != 200 || md["Arn"] != arn(acct, "eu-west-1", idEU) {
		t.Fatalf("eu-west-1 DescribeKey: %d %v", status, m)
	}
	for _, tc := range []struct{ target, body, want string }{
		{"TrentService.Nope", `{}`, "UnknownOperationException"},
		{"Other.DescribeKey", `{}`, "UnknownOperationException"},
		{"TrentService.Sign", `{}`, "UnsupportedOperationException"},
		{"TrentService.DescribeKey", `{"KeyId":`, "SerializationException"},
		{"TrentService.DescribeKey", `{}`, "ValidationException"},
	} {
		status, m := rawPost(t, v.srv.URL, tc.target, goodAuth, tc.body)
		if status != 400 || m["__type"] != tc.want {
			t.Errorf("%s %s: %d %v, want 400 %s", tc.target, tc.body, status, m, tc.want)
		}
	}
}

func decodeB64(v any) ([]byte, error) {
	var b []byte
	s, _ := v.(string)
	err := json.Unmarshal([]byte(`"`+s+`"`), &b)
	return b, err
}
