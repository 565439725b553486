package kmsemu

import (
	"net/http"
	"strings"
)

// checkAuth checks that a request carries a well-formed SigV4 Authorization
// header scoped to the kms service and returns the region of its credential
// scope. The signature itself is not verified: the emulator shares no
// secret with its clients.
func checkAuth(r *http.Request) (string, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", clientErr(errMissingAuth, "Missing Authentication Token")
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(h, algo) {
		return "", clientErr(errIncompleteSig, "Authorization header must use the AWS4-HMAC-SHA256 algorithm")
	}
	params := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimPrefix(h, algo), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", clientErr(errIncompleteSig, "Authorization header requires each component to be key=value, got %q", strings.TrimSpace(part))
		}
		params[k] = v
	}
	var missing []string
	for _, p := range []string{"Credential", "SignedHeaders", "Signature"} {
		if params[p] == "" {
			missing = append(missing, "Authorization header requires '"+p+"' parameter.")
		}
	}
	if r.Header.Get("X-Amz-Date") == "" && r.Header.Get("Date") == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return "", clientErr(errIncompleteSig, "%s", strings.Join(missing, " "))
	}
	scope := strings.Split(params["Credential"], "/")
	if len(scope) != 5 || scope[0] == "" || !isSigDate(scope[1]) || !isRegion(scope[2]) || scope[4] != "aws4_request" {
		return "", clientErr(errIncompleteSig, "Credential %q is not ACCESS_KEY_ID/YYYYMMDD/REGION/kms/aws4_request", redactAKID(params["Credential"]))
	}
	if scope[3] != "kms" {
		return "", clientErr(errInvalidSignature, "Credential should be scoped to correct service: 'kms'.")
	}
	if sh := params["SignedHeaders"]; !isSignedHeaders(sh) || !strings.Contains(";"+sh+";", ";host;") {
		return "", clientErr(errIncompleteSig, "SignedHeaders %q must be a ;-separated list of lowercase header names including host", sh)
	}
	if !isSignature(params["Signature"]) {
		return "", clientErr(errIncompleteSig, "Signature must be 64 lowercase hex digits")
	}
	return scope[2], nil
}

// redactAKID keeps an access key id out of error messages.
func redactAKID(cred string) string {
	if _, rest, ok := strings.Cut(cred, "/"); ok {
		return "<access key id>/" + rest
	}
	return "<credential>"
}
