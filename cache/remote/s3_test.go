package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const (
	s3TestKey    = "AKIAMLBUILDS3TEST"
	s3TestSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYS3TESTKEY"
	s3TestToken  = "session-token-FQoGZXIvYXdzEXAMPLE"
)

// TestS3SignerVectors checks the signer against AWS's published examples:
// get-vanilla and get-vanilla-query-order-key-case of the SigV4 test
// suite, and the S3 documentation's "Example: GET Object".
func TestS3SignerVectors(t *testing.T) {
	suite := awsCreds{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	when := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	for _, tc := range []struct{ url, sig string }{
		{"https://example.amazonaws.com/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"https://example.amazonaws.com/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		signV4(req, suite, "us-east-1", "service", emptySHA256, when)
		want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + tc.sig
		if got := req.Header.Get("Authorization"); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.url, got, want)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	req.Header.Set("Range", "bytes=0-9")
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	s3doc := awsCreds{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	signV4(req, s3doc, "us-east-1", "s3", emptySHA256, time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC))
	want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("S3 GET Object example:\n got %s\nwant %s", got, want)
	}

	// A session token is sent and signed.
	req, _ = http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
	signV4(req, awsCreds{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "x", SessionToken: "tok"}, "us-east-1", "service", emptySHA256, when)
	if req.Header.Get("X-Amz-Security-Token") != "tok" || !strings.Contains(req.Header.Get("Authorization"), "SignedHeaders=host;x-amz-date;x-amz-security-token,") {
		t.Errorf("session token not signed: %v", req.Header)
	}
}

// TestS3Escape checks the escaping of keys and of the canonical query.
func TestS3Escape(t *testing.T) {
	for in, want := range map[string]string{
		"team/cas/0a1b":   "team/cas/0a1b",
		"a b+c/ü~_.-":     "a%20b%2Bc/%C3%BC~_.-",
		"x=y&z?#%":        "x%3Dy%26z%3F%23%25",
		"uploads":         "uploads",
		"2~_-.AZaz09/end": "2~_-.AZaz09/end",
	} {
		if got := awsEscape(in, true); got != want {
			t.Errorf("awsEscape(%q) = %q; want %q", in, got, want)
		}
	}
	if got := canonicalQuery("uploadId=a%2Bb&partNumber=2"); got != "partNumber=2&uploadId=a%2Bb" {
		t.Errorf("canonicalQuery = %q", got)
	}
	if got := canonicalQuery("uploads"); got != "uploads=" {
		t.Errorf("canonicalQuery(uploads) = %q", got)
	}
}

// sigChecker is an S3 front that verifies every request's SigV4 signature
// (recomputed with the known secret) before handing it to next, and keeps
// the requests' headers.
type sigChecker struct {
	t       *testing.T
	creds   awsCreds
	next    http.Handler
	mu      sync.Mutex
	seen    []*http.Request
	checked atomic.Int64
}

func (c *sigChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := c.verify(r); err != nil {
		var cut *bodyCut
		if errors.As(err, &cut) {
			// The client gave up mid-request (an upload aborted on
			// purpose, its other parts cancelled): not a signature fault.
			http.Error(w, "<Error><Code>IncompleteBody</Code></Error>", http.StatusBadRequest)
			return
		}
		c.t.Errorf("%s %s: %v", r.Method, r.URL, err)
		http.Error(w, "<Error><Code>SignatureDoesNotMatch</Code><Message>"+err.Error()+"</Message></Error>", http.StatusForbidden)
		return
	}
	c.checked.Add(1)
	c.mu.Lock()
	c.seen = append(c.seen, r.Clone(context.Background()))
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

// bodyCut is a request body that ended before its length: the client
// cancelled the request.
type bodyCut struct{ err error }

func (b *bodyCut) Error() string { return "request body cut: " + b.err.Error() }

func (c *sigChecker) verify(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("not signed: %q", auth)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for _, must := range []string{"host", "x-amz-content-sha256", "x-amz-date"} {
		if !contains(signed, must) {
			return fmt.Errorf("%s is not signed (%s)", must, fields["SignedHeaders"])
		}
	}
	if c.creds.SessionToken != "" && (!contains(signed, "x-amz-security-token") || r.Header.Get("X-Amz-Security-Token") != c.creds.SessionToken) {
		return errors.New("the session token is not sent and signed")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !contains(signed, "content-type") {
		return errors.New("Content-Type is not signed")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return &bodyCut{err}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if sum := sha256.Sum256(body); hash != unsignedPayload && hash != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("x-amz-content-sha256 %s is not the body's", hash)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	if d := time.Since(when); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("x-amz-date %s is off", when)
	}
	re := &http.Request{Method: r.Method, Host: r.Host, URL: &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}, Header: http.Header{}}
	for _, h := range signed {
		if h != "host" && h != "x-amz-date" && h != "x-amz-security-token" {
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	signV4(re, c.creds, "us-east-1", "s3", hash, when)
	if got := re.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature mismatch:\n got %s\nwant %s", auth, got)
	}
	return nil
}

// fakeS3 serves a gofakes3 bucket "team-cache" behind a signature check
// (creds zero: no check).
func fakeS3(t *testing.T, creds awsCreds) (*s3mem.Backend, *httptest.Server, *sigChecker) {
	t.Helper()
	mem := s3mem.New()
	if err := mem.CreateBucket("team-cache"); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = gofakes3.New(mem).Server()
	var chk *sigChecker
	if creds.AccessKeyID != "" {
		chk = &sigChecker{t: t, creds: creds, next: h}
		h = chk
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return mem, srv, chk
}

// memKeys lists the objects of the fake bucket.
func memKeys(t *testing.T, mem *s3mem.Backend) func() []string {
	return func() []string {
		objs, err := mem.ListBucket("team-cache", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range objs.Contents {
			keys = append(keys, o.Key)
		}
		return keys
	}
}

// pendingUploads counts the multipart uploads the server has open.
func pendingUploads(t *testing.T, s *s3Objects) int {
	t.Helper()
	resp, err := s.do(context.Background(), s3Request{method: http.MethodGet, key: "", query: "uploads"})
	if err != nil {
		t.Fatal(err)
	}
	defer drain(resp)
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ListMultipartUploads: %s %s", resp.Status, data)
	}
	return bytes.Count(data, []byte("<Upload>"))
}

// isolatedEnv is an AWS environment with nothing in it but m (no files,
// no IMDS).
func isolatedEnv(t *testing.T, m map[string]string) map[string]string {
	dir := t.TempDir()
	env := map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "none-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	for k, v := range m {
		env[k] = v
	}
	return env
}

// TestS3ObjectStore runs the conformance suite against gofakes3 behind a
// signature check, with credentials (and a session token) from the
// environment, path style, a prefix and server-side encryption asked for;
// no multipart upload may be left open.
func TestS3ObjectStore(t *testing.T) {
	creds := awsCreds{AccessKeyID: s3TestKey, SecretAccessKey: s3TestSecret, SessionToken: s3TestToken}
	mem, srv, chk := fakeS3(t, creds)
	env := isolatedEnv(t, map[string]string{"AWS_ACCESS_KEY_ID": s3TestKey, "AWS_SECRET_ACCESS_KEY": s3TestSecret, "AWS_SESSION_TOKEN": s3TestToken})
	q := url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}, "ssetype": {"AES256"}}
	st, err := openS3(context.Background(), "team-cache", q, Options{Getenv: envMap(env)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, st)
	testObjectStore(t, st, "team/", memKeys(t, mem))
	if n := pendingUploads(t, st); n != 0 {
		t.Errorf("%d multipart uploads were left open", n)
	}
	for _, k := range memKeys(t, mem)() {
		if !strings.HasPrefix(k, "team/") {
			t.Errorf("object %s outside the prefix", k)
		}
	}
	if chk.checked.Load() == 0 {
		t.Fatal("no request was checked")
	}
	// Uploads ask for server-side encryption.
	var puts, creates int
	for _, r := range chk.seen {
		isCreate := r.Method == http.MethodPost && r.URL.Query().Has("uploads")
		isPut := r.Method == http.MethodPut && !r.URL.Query().Has("partNumber")
		if isCreate {
			creates++
		}
		if isPut {
			puts++
		}
		if (isCreate || isPut) && r.Header.Get("X-Amz-Server-Side-Encryption") != "AES256" {
			t.Errorf("%s %s without x-amz-server-side-encryption", r.Method, r.URL)
		}
	}
	if puts == 0 || creates == 0 {
		t.Errorf("saw %d PUTs and %d multipart uploads", puts, creates)
	}
	if sec := st.Secrets(); !contains(sec, s3TestSecret) || !contains(sec, s3TestToken) {
		t.Errorf("Secrets() = %d values, without the secret key or token", len(sec))
	}
}

// TestS3ObjectStoreProfile runs the suite with credentials from a profile
// of a shared credentials file, a virtual-hosted-style endpoint replaced
// by path style because of the dots in the bucket name.
func TestS3ObjectStoreProfile(t *testing.T) {
	creds := awsCreds{AccessKeyID: "AKIAPROFILE", SecretAccessKey: "profile/secret/KEY"}
	mem := s3mem.New()
	if err := mem.CreateBucket("team.cache"); err != nil {
		t.Fatal(err)
	}
	chk := &sigChecker{t: t, creds: creds, next: gofakes3.New(mem).Server()}
	srv := httptest.NewServer(chk)
	defer srv.Close()
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials")
	writeObjectFile(t, credFile, []byte("[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = wrong\n\n[ci]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile/secret/KEY\n"))
	env := isolatedEnv(t, map[string]string{"AWS_SHARED_CREDENTIALS_FILE": credFile, "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"})
	q := url.Values{"endpoint": {srv.URL}, "profile": {"ci"}}
	st, err := openS3(context.Background(), "team.cache", q, Options{Getenv: envMap(env)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, st)
	if st.basePath != "/team.cache" {
		t.Fatalf("a dotted bucket name is not path style: host %s path %s", st.host, st.basePath)
	}
	keys := func() []string {
		objs, err := mem.ListBucket("team.cache", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs.Contents {
			out = append(out, o.Key)
		}
		return out
	}
	testObjectStore(t, st, "p/", keys)
	if n := pendingUploads(t, st); n != 0 {
		t.Errorf("%d multipart uploads were left open", n)
	}
}

// TestS3Addressing checks the URLs requests go to, and where the region
// comes from.
func TestS3Addressing(t *testing.T) {
	env := envMap(isolatedEnv(t, map[string]string{"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cr3t-key"}))
	for _, tc := range []struct {
		bucket string
		q      url.Values
		want   string
	}{
		{"team-cache", url.Values{"region": {"eu-west-1"}}, "https://team-cache.s3.eu-west-1.amazonaws.com/k/a%20b"},
		{"team.cache", url.Values{"region": {"eu-west-1"}}, "https://s3.eu-west-1.amazonaws.com/team.cache/k/a%20b"},
		{"team-cache", url.Values{"region": {"us-west-2"}, "dualstack": {"true"}, "fips": {"true"}}, "https://team-cache.s3-fips.dualstack.us-west-2.amazonaws.com/k/a%20b"},
		{"team-cache", url.Values{"disable_https": {"true"}}, "http://team-cache.s3.us-east-1.amazonaws.com/k/a%20b"},
		{"team-cache", url.Values{"region": {"cn-north-1"}}, "https://team-cache.s3.cn-north-1.amazonaws.com.cn/k/a%20b"},
		{"team-cache", url.Values{"endpoint": {"https://minio.example.com:9000"}}, "https://team-cache.minio.example.com:9000/k/a%20b"},
		{"team-cache", url.Values{"endpoint": {"https://minio.example.com:9000/"}, "s3ForcePathStyle": {"true"}}, "https://minio.example.com:9000/team-cache/k/a%20b"},
		{"team-cache", url.Values{"endpoint": {"http://127.0.0.1:9000/s3"}}, "http://127.0.0.1:9000/s3/team-cache/k/a%20b"},
		{"team-cache", url.Values{"endpoint": {"http://localhost:9000"}}, "http://localhost:9000/team-cache/k/a%20b"},
	} {
		s, err := openS3(context.Background(), tc.bucket, tc.q, Options{Getenv: env})
		if err != nil {
			t.Errorf("%s %v: %v", tc.bucket, tc.q, err)
			continue
		}
		if got := s.objectURL("k/a b", "").String(); got != tc.want {
			t.Errorf("%s %v: URL %s; want %s", tc.bucket, tc.q, got, tc.want)
		}
	}
	// The region: region=, AWS_REGION, AWS_DEFAULT_REGION, the profile's.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	writeObjectFile(t, cfg, []byte("[default]\nregion = ap-south-1\n[profile other]\nregion = sa-east-1\n"))
	for _, tc := range []struct {
		env  map[string]string
		q    url.Values
		want string
	}{
		{nil, nil, "ap-south-1"},
		{map[string]string{"AWS_PROFILE": "other"}, nil, "sa-east-1"},
		{map[string]string{"AWS_DEFAULT_REGION": "eu-north-1"}, nil, "eu-north-1"},
		{map[string]string{"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-north-1"}, nil, "eu-west-3"},
		{map[string]string{"AWS_REGION": "eu-west-3"}, url.Values{"region": {"us-east-2"}}, "us-east-2"},
	} {
		m := isolatedEnv(t, map[string]string{"AWS_CONFIG_FILE": cfg, "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cr3t-key"})
		for k, v := range tc.env {
			m[k] = v
		}
		s, err := openS3(context.Background(), "b-b-b", tc.q, Options{Getenv: envMap(m)})
		if err != nil {
			t.Fatal(err)
		}
		if s.region != tc.want {
			t.Errorf("env %v, query %v: region %s; want %s", tc.env, tc.q, s.region, tc.want)
		}
	}
}

// TestS3Params checks that bad or unknown URL parameters are refused
// with a message saying what to do.
func TestS3Params(t *testing.T) {
	env := envMap(isolatedEnv(t, map[string]string{"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cr3t-key"}))
	for _, tc := range []struct {
		q    url.Values
		want string
	}{
		{url.Values{"awssdk": {"v2"}}, "known: region, endpoint, use_path_style"},
		{url.Values{"request_checksum_calculation": {"when_supported"}}, "SHA-256"},
		{url.Values{"response_checksum_validation": {"sometimes"}}, "when_required"},
		{url.Values{"use_path_style": {"yes please"}}, "want true or false"},
		{url.Values{"ssetype": {"rot13"}}, "AES256"},
		{url.Values{"ssetype": {"AES256"}, "kmskeyid": {"k"}}, "aws:kms"},
		{url.Values{"endpoint": {"minio:9000"}}, "http:// or https://"},
		{url.Values{"endpoint": {"http://bob:hunter22@minio:9000"}}, "not accepted"},
		{url.Values{"profile": {"nosuch"}}, `profile "nosuch"`},
	} {
		_, err := openS3(context.Background(), "team-cache", tc.q, Options{Getenv: env})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want an error mentioning %q", tc.q, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter22") {
			t.Errorf("error reveals a password: %v", err)
		}
	}
	q := url.Values{"request_checksum_calculation": {"when_required"}, "response_checksum_validation": {"WHEN_REQUIRED"}, "kmskeyid": {"arn:aws:kms:k"}}
	s, err := openS3(context.Background(), "team-cache", q, Options{Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	if s.sse != "aws:kms" || s.kmsKey != "arn:aws:kms:k" {
		t.Errorf("kmskeyid: sse %q key %q", s.sse, s.kmsKey)
	}
}

// TestS3CustomEndpointNoIMDSDirect: with a custom endpoint and no
// credentials anywhere, no probe of the instance metadata service, a
// warning, unsigned requests; credentials in AWS_ENDPOINT_URL refused.
func TestS3CustomEndpointNoIMDSDirect(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	var probes atomic.Int64
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		http.NotFound(w, r)
	}))
	defer imds.Close()
	_, srv, _ := fakeS3(t, awsCreds{})
	env := map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL, "AWS_ENDPOINT_URL_S3": srv.URL}
	var logs bytes.Buffer
	st, err := openS3(context.Background(), "team-cache", url.Values{"use_path_style": {"true"}}, Options{Getenv: envMap(env), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, st)
	if _, err := st.Stat(context.Background(), "ac/none"); !errors.Is(err, errNoObject) {
		t.Fatalf("Stat: %v", err)
	}
	if st.creds != nil {
		t.Error("requests are signed")
	}
	if n := probes.Load(); n != 0 {
		t.Errorf("the instance metadata service was probed %d times", n)
	}
	if !strings.Contains(logs.String(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no warning about the missing credentials: %s", logs.String())
	}
	// On AWS's own endpoint, IMDS is the last resort.
	aws, err := openS3(context.Background(), "team-cache", nil, Options{Getenv: envMap(map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aws.creds.get(context.Background()); !errors.Is(err, ErrAuth) || probes.Load() == 0 {
		t.Errorf("on AWS without credentials: %v after %d probes; want ErrAuth after asking IMDS", err, probes.Load())
	}
	env["AWS_ENDPOINT_URL"] = "http://bob:hunter22@minio:9000"
	delete(env, "AWS_ENDPOINT_URL_S3")
	if _, err := openS3(context.Background(), "team-cache", nil, Options{Getenv: envMap(env)}); err == nil || strings.Contains(err.Error(), "hunter22") || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL") {
		t.Errorf("Open with credentials in AWS_ENDPOINT_URL: %v", err)
	}
}

// stsServer answers AssumeRole and AssumeRoleWithWebIdentity with keys
// named after the action, and records the requests' forms and headers.
func stsServer(t *testing.T, expires time.Time) (*httptest.Server, *[]url.Values, *[]http.Header) {
	var mu sync.Mutex
	var forms []url.Values
	var headers []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		mu.Lock()
		forms = append(forms, r.PostForm)
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		action := r.PostForm.Get("Action")
		if r.PostForm.Get("RoleArn") == "arn:aws:iam::1:role/denied" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>`)
			return
		}
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials>
<AccessKeyId>AKIA-%[1]s</AccessKeyId><SecretAccessKey>secret-%[1]s</SecretAccessKey><SessionToken>token-%[1]s</SessionToken>
<Expiration>%[2]s</Expiration></Credentials></%[1]sResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></%[1]sResponse>`, action, expires.UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	return srv, &forms, &headers
}

// credsJSON is a credential endpoint's answer.
func credsJSON(id string) string {
	return fmt.Sprintf(`{"Code":"Success","AccessKeyId":"%s","SecretAccessKey":"secret-%s","Token":"token-%s","Expiration":"%s"}`, id, id, id, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

// TestS3CredentialChain checks which source the chain picks when several
// could provide credentials, each source against a fake service, and that
// failures are ErrAuth without secrets in their messages.
func TestS3CredentialChain(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	script := filepath.Join(dir, "creds.sh")
	writeObjectFile(t, script, []byte("#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROCESS\", \"SecretAccessKey\": \"process-secret\", \"SessionToken\": \"process-token\", \"Expiration\": \""+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+"\"}'\n"))
	failing := filepath.Join(dir, "fail.sh")
	writeObjectFile(t, failing, []byte("#!/bin/sh\necho 'the session has expired' >&2\nexit 3\n"))
	tokenFile := filepath.Join(dir, "token")
	writeObjectFile(t, tokenFile, []byte("eyJ-web-identity-token\n"))
	credFile := filepath.Join(dir, "credentials")
	writeObjectFile(t, credFile, []byte("[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file-secret\n[both]\naws_access_key_id = AKIABOTH\naws_secret_access_key = both-secret\ncredential_process = sh "+failing+"\n[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-secret\n"))
	cfgFile := filepath.Join(dir, "config")
	writeObjectFile(t, cfgFile, []byte("[profile proc]\ncredential_process = sh "+script+"\n[profile broken]\ncredential_process = sh "+failing+"\n[profile sso]\nsso_session = corp\nsso_account_id = 1\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n[profile empty]\nregion = eu-west-1\n[profile role]\nrole_arn = arn:aws:iam::1:role/ci\nsource_profile = base\nrole_session_name = ci-run\n"))
	sts, forms, headers := stsServer(t, time.Now().Add(time.Hour))
	var imdsCalls []string
	var imdsMu sync.Mutex
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imdsMu.Lock()
		imdsCalls = append(imdsCalls, r.Method+" "+r.URL.Path)
		imdsMu.Unlock()
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") != "":
			fmt.Fprint(w, "imds-session-token")
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "imds-session-token":
			http.Error(w, "no token", http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
			fmt.Fprint(w, "ci-role\n")
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/ci-role":
			fmt.Fprint(w, credsJSON("AKIAIMDS"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer imds.Close()
	container := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "container-auth-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, credsJSON("AKIACONTAINER"))
	}))
	defer container.Close()

	files := map[string]string{"AWS_SHARED_CREDENTIALS_FILE": credFile, "AWS_CONFIG_FILE": cfgFile, "AWS_ENDPOINT_URL_STS": sts.URL}
	envKeys := map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}
	webID := map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::1:role/web", "AWS_ROLE_SESSION_NAME": "pod"}
	containerEnv := map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": container.URL + "/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth-token"}
	imdsEnv := map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"), "AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_ENDPOINT_URL_STS": sts.URL}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		profile string
		want    string // the access key id, or "error: <text>"
	}{
		{"env over the files", merge(files, envKeys, webID, containerEnv, imdsEnv), "", "AKIAENV"},
		{"profile= over env", merge(files, envKeys), "proc", "AKIAPROCESS"},
		{"default profile file", merge(files, containerEnv, imdsEnv), "", "AKIAFILE"},
		{"keys over credential_process", merge(files), "both", "AKIABOTH"},
		{"credential_process", merge(files, map[string]string{"AWS_PROFILE": "proc"}, containerEnv, imdsEnv), "", "AKIAPROCESS"},
		{"web identity over the default profile", merge(files, webID), "", "AKIA-AssumeRoleWithWebIdentity"},
		{"web identity over container", merge(webID, containerEnv, imdsEnv), "", "AKIA-AssumeRoleWithWebIdentity"},
		{"container over IMDS", merge(containerEnv, imdsEnv), "", "AKIACONTAINER"},
		{"container for a profile without keys", merge(files, containerEnv, imdsEnv), "empty", "AKIACONTAINER"},
		{"IMDS last", merge(imdsEnv), "", "AKIAIMDS"},
		{"role_arn with source_profile", merge(files), "role", "AKIA-AssumeRole"},
		{"SSO refused", merge(files), "sso", "error: aws configure export-credentials --profile sso --format env"},
		{"credential_process failing", merge(files), "broken", "error: the session has expired"},
		{"web identity refused", merge(map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::1:role/denied"}), "", "error: Not authorized"},
		{"half the env keys", merge(map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV"}), "", "error: must be set together"},
		{"nothing", merge(map[string]string{"AWS_EC2_METADATA_DISABLED": "true"}), "", "error: no AWS credentials found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			if tc.profile != "" {
				q.Set("profile", tc.profile)
			}
			s, err := openS3(context.Background(), "team-cache", q, Options{Getenv: envMap(tc.env)})
			var c awsCreds
			if err == nil {
				c, err = s.creds.get(context.Background())
			}
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("credentials %s, %v; want an error mentioning %q", c.AccessKeyID, err, want)
				}
				if !errors.Is(err, ErrAuth) {
					t.Errorf("%v is not ErrAuth", err)
				}
				for _, sec := range []string{"process-secret", "file-secret", "env-secret", "eyJ-web-identity-token", "base-secret"} {
					if strings.Contains(err.Error(), sec) {
						t.Errorf("error reveals a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AccessKeyID != tc.want {
				t.Errorf("credentials from %s; want %s", c.AccessKeyID, tc.want)
			}
			if sec := s.Secrets(); !contains(sec, c.SecretAccessKey) || (c.SessionToken != "" && !contains(sec, c.SessionToken)) {
				t.Errorf("Secrets() lacks the credentials in use")
			}
		})
	}
	imdsMu.Lock()
	if len(imdsCalls) < 3 || imdsCalls[0] != "PUT /latest/api/token" {
		t.Errorf("IMDS calls %v; want the token PUT first", imdsCalls)
	}
	imdsMu.Unlock()
	// The web identity token and the role went to STS; AssumeRole was
	// signed with the source profile's keys.
	var sawWeb, sawRole bool
	for i, f := range *forms {
		switch f.Get("Action") {
		case "AssumeRoleWithWebIdentity":
			sawWeb = sawWeb || f.Get("WebIdentityToken") == "eyJ-web-identity-token" && (f.Get("RoleSessionName") == "pod" || f.Get("RoleArn") == "arn:aws:iam::1:role/denied")
			if (*headers)[i].Get("Authorization") != "" {
				t.Error("AssumeRoleWithWebIdentity was signed")
			}
		case "AssumeRole":
			sawRole = sawRole || f.Get("RoleArn") == "arn:aws:iam::1:role/ci" && f.Get("RoleSessionName") == "ci-run" &&
				strings.Contains((*headers)[i].Get("Authorization"), "Credential=AKIABASE/")
		}
	}
	if !sawWeb || !sawRole {
		t.Errorf("STS requests %v", *forms)
	}
}

// TestS3CredentialRefresh: temporary credentials are fetched once for
// concurrent users and again 5 minutes before they expire.
func TestS3CredentialRefresh(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var fetches atomic.Int64
	c := newCredCache(func(context.Context) (awsCreds, error) {
		n := fetches.Add(1)
		return awsCreds{AccessKeyID: fmt.Sprintf("AKIA%d", n), SecretAccessKey: fmt.Sprintf("secret-%d", n), Expires: now.Add(time.Hour)}, nil
	})
	var mu sync.Mutex
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.get(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for concurrent first uses; want 1", n)
	}
	advance(50 * time.Minute) // 10 minutes left: still good
	if cr, _ := c.get(context.Background()); cr.AccessKeyID != "AKIA1" {
		t.Errorf("refreshed too early: %s", cr.AccessKeyID)
	}
	advance(6 * time.Minute) // 4 minutes left: refresh
	if cr, _ := c.get(context.Background()); cr.AccessKeyID != "AKIA2" {
		t.Errorf("not refreshed 4 minutes before expiry: %s", cr.AccessKeyID)
	}
	if sec := c.knownSecrets(); !contains(sec, "secret-1") || !contains(sec, "secret-2") {
		t.Errorf("knownSecrets = %v", sec)
	}
}

// TestS3Errors: a refusal is a *StatusError with S3's message; a 503 on a
// read is retried; 404 of the bucket is not a missing object; an error in a
// 200 answer to CompleteMultipartUpload fails the upload.
func TestS3Errors(t *testing.T) {
	var gets atomic.Int64
	var aborts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/denied"):
			w.WriteHeader(http.StatusForbidden)
			if r.Method != http.MethodHead {
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R</RequestId></Error>`)
			}
		case strings.HasSuffix(r.URL.Path, "/flaky"):
			if gets.Add(1) < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
				return
			}
			w.Header().Set("Content-Length", "5")
			fmt.Fprint(w, "hello")
		case strings.HasSuffix(r.URL.Path, "/down"):
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasSuffix(r.URL.Path, "/nobucket"):
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`)
		case strings.HasSuffix(r.URL.Path, "/moved"):
			w.Header().Set("X-Amz-Bucket-Region", "eu-central-1")
			w.WriteHeader(http.StatusMovedPermanently)
			fmt.Fprint(w, `<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>`)
		case r.Method == http.MethodPost && r.URL.Query().Has("uploads"):
			fmt.Fprint(w, `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up+1/2</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPut && r.URL.Query().Get("uploadId") == "up+1/2":
			w.Header().Set("ETag", `"etag"`)
		case r.Method == http.MethodPost && r.URL.Query().Get("uploadId") == "up+1/2":
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n\n"+`<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`)
		case r.Method == http.MethodDelete && r.URL.Query().Get("uploadId") == "up+1/2":
			aborts.Add(1)
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "unexpected request "+r.Method+" "+r.URL.String(), http.StatusTeapot)
		}
	}))
	defer srv.Close()
	env := isolatedEnv(t, map[string]string{"AWS_ACCESS_KEY_ID": s3TestKey, "AWS_SECRET_ACCESS_KEY": s3TestSecret, "AWS_SESSION_TOKEN": s3TestToken})
	s, err := openS3(context.Background(), "b", url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}}, Options{Getenv: envMap(env)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, s)
	s.retryWait = time.Millisecond
	ctx := context.Background()
	noSecret := func(err error) {
		t.Helper()
		for _, sec := range []string{s3TestSecret, s3TestToken} {
			if strings.Contains(err.Error(), sec) {
				t.Errorf("error reveals a secret: %v", err)
			}
		}
	}

	_, _, err = s.Open(ctx, "team/denied")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 403 || se.Body != "AccessDenied: Access Denied" || se.Object != "team/denied" {
		t.Errorf("Open of a denied object: %#v", err)
	} else {
		noSecret(err)
	}
	if _, err := s.Stat(ctx, "team/denied"); !errors.As(err, &se) || se.Code != 403 {
		t.Errorf("Stat of a denied object: %v", err)
	}

	rc, n, err := s.Open(ctx, "team/flaky")
	if err != nil || n != 5 {
		t.Fatalf("Open after two 503s: %d, %v", n, err)
	}
	b, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(b) != "hello" || gets.Load() != 3 {
		t.Errorf("read %q after %d GETs", b, gets.Load())
	}
	if _, _, err := s.Open(ctx, "team/down"); !errors.As(err, &se) || se.Code != 503 || !IsUnavailable(err) {
		t.Errorf("Open of a service that stays down: %v", err)
	}

	if _, _, err := s.Open(ctx, "team/nobucket"); errors.Is(err, errNoObject) || !errors.As(err, &se) || !strings.Contains(se.Body, "NoSuchBucket") {
		t.Errorf("Open in a missing bucket: %v; want a StatusError, not errNoObject", err)
	}
	if _, _, err := s.Open(ctx, "team/moved"); err == nil || !strings.Contains(err.Error(), "?region=eu-central-1") {
		t.Errorf("Open in a bucket of another region: %v", err)
	}

	smallParts(t, 1024)
	data := bytes.Repeat([]byte("x"), 3000)
	err = s.Put(ctx, "team/multi", "application/octet-stream", int64(len(data)), bytes.NewReader(data))
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(se.Body, "InternalError") || !IsUnavailable(err) {
		t.Errorf("Put whose completion failed inside a 200: %v", err)
	}
	if aborts.Load() != 1 {
		t.Errorf("%d aborts; want 1", aborts.Load())
	}
}

// TestS3AbortAfterCancel: an upload whose context is cancelled while a
// part is in flight is still aborted.
func TestS3AbortAfterCancel(t *testing.T) {
	mem := s3mem.New()
	if err := mem.CreateBucket("team-cache"); err != nil {
		t.Fatal(err)
	}
	inner := gofakes3.New(mem).Server()
	release := make(chan struct{})
	var aborted atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("partNumber") {
			<-release
		}
		if r.Method == http.MethodDelete && r.URL.Query().Has("uploadId") {
			aborted.Store(true)
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	env := isolatedEnv(t, map[string]string{"AWS_ACCESS_KEY_ID": s3TestKey, "AWS_SECRET_ACCESS_KEY": s3TestSecret})
	s, err := openS3(context.Background(), "team-cache", url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}}, Options{Getenv: envMap(env)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, s)
	smallParts(t, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(); close(release) })
	data := bytes.Repeat([]byte("y"), 5000)
	if err := s.Put(ctx, "k", "application/octet-stream", int64(len(data)), bytes.NewReader(data)); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: %v", err)
	}
	if !aborted.Load() {
		t.Error("the upload was not aborted")
	}
	if n := pendingUploads(t, s); n != 0 {
		t.Errorf("%d uploads left open", n)
	}
}

// FuzzS3ErrorBody feeds the XML parsers arbitrary bodies: they must not
// panic, and what they find must come from the body.
func FuzzS3ErrorBody(f *testing.F) {
	for _, seed := range []string{
		`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key></Error>`,
		`<ErrorResponse><Error><Code>AccessDenied</Code><Message>nope</Message></Error></ErrorResponse>`,
		`<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"e-2"</ETag></CompleteMultipartUploadResult>`,
		"<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code></Error>",
		`<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey><Expiration>2026-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`,
		`<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>`,
		`<Error><Code>`, ``, `not xml at all`, `<Error><Code><![CDATA[x]]></Code></Error>`,
	} {
		f.Add([]byte(seed))
	}
	resp := &http.Response{StatusCode: 200, Request: &http.Request{Method: http.MethodPost}}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, msg, ok := parseS3Error(body)
		if !ok && (code != "" || msg != "") {
			t.Errorf("no error found, yet code %q message %q", code, msg)
		}
		err := completeResult(resp, "k", body)
		if ok && err == nil {
			t.Errorf("an <Error> in the body completed the upload")
		}
		if c, err := parseSTSCredentials(body); err == nil && (c.AccessKeyID == "" || c.SecretAccessKey == "") {
			t.Errorf("credentials without keys: %+v", c)
		}
	})
}

// TestS3NoEnvAccess is a reminder in code of the rule that the store reads
// the environment through Options.Getenv only: with a Getenv that knows
// nothing, the process's AWS variables are not seen.
func TestS3NoEnvAccess(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAPROCESSENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "process-env-secret")
	t.Setenv("HOME", t.TempDir())
	s, err := openS3(context.Background(), "team-cache", url.Values{"endpoint": {"http://127.0.0.1:1"}}, Options{Getenv: envMap(nil), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if s.creds != nil {
		t.Error("credentials were found in the process environment, not through Getenv")
	}
}
