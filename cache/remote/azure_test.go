package remote

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/cache/remote/remotetest"
)

// azureOpts is Options reading env only (nothing from the process), and
// with no managed identity or Azure CLI to fall back on.
func azureOpts(t *testing.T, env map[string]string) Options {
	t.Helper()
	noAmbientAzure(t)
	return Options{Getenv: func(k string) string { return env[k] }, Timeout: 10 * time.Second}
}

// noAmbientAzure keeps this machine's IMDS and Azure CLI out of a test.
func noAmbientAzure(t *testing.T) {
	t.Helper()
	oldVM, oldCLI := onAzureVM, azureCLI
	onAzureVM = func() bool { return false }
	azureCLI = "mlbuild-test-no-such-az"
	t.Cleanup(func() { onAzureVM, azureCLI = oldVM, oldCLI })
}

// containerRequest sends a container-level request (restype=container).
func containerRequest(t *testing.T, o *azureObjects, method string, q url.Values) *http.Response {
	t.Helper()
	q.Set("restype", "container")
	req, err := o.newRequest(context.Background(), method, o.base+"?"+q.Encode(), nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// createContainer creates the store's container (Create Container).
func createContainer(t *testing.T, o *azureObjects) {
	t.Helper()
	req, err := o.newRequest(context.Background(), http.MethodPut, o.base+"?restype=container", nil, strings.NewReader(""), 0)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create container: %v", o.refused(resp, "(container)"))
	}
	drain(resp)
}

// listBlobs lists the container's committed blobs (List Blobs).
func listBlobs(t *testing.T, o *azureObjects) []string {
	t.Helper()
	var names []string
	marker := ""
	for {
		q := url.Values{"comp": {"list"}}
		if marker != "" {
			q.Set("marker", marker)
		}
		resp := containerRequest(t, o, http.MethodGet, q)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list blobs: %v", o.refused(resp, "(list)"))
		}
		var res struct {
			Blobs struct {
				Blob []struct {
					Name string `xml:"Name"`
				} `xml:"Blob"`
			} `xml:"Blobs"`
			NextMarker string `xml:"NextMarker"`
		}
		err := xml.NewDecoder(resp.Body).Decode(&res)
		drain(resp)
		if err != nil {
			t.Fatalf("list blobs: %v", err)
		}
		for _, b := range res.Blobs.Blob {
			names = append(names, b.Name)
		}
		if res.NextMarker == "" {
			return names
		}
		marker = res.NextMarker
	}
}

// TestAzureObjectStoreAzuriteSharedKey runs the conformance suite against
// Azurite, which checks Shared Key signatures.
func TestAzureObjectStoreAzuriteSharedKey(t *testing.T) {
	az := remotetest.StartAzurite(t)
	opts := azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": remotetest.AzuriteAccount, "AZURE_STORAGE_KEY": remotetest.AzuriteKey})
	o, err := openAzure(context.Background(), "mlbuild-cache", url.Values{"localemu": {"true"}, "domain": {az.Host}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o.Close() }()
	createContainer(t, o)
	// Names with characters to escape.
	ctx := context.Background()
	for _, k := range []string{"team x/ac/a+b%c", "team x/ac/ü?#&="} {
		if err := o.Put(ctx, k, "application/json", 2, exactly(strings.NewReader("{}"), 2)); err != nil {
			t.Fatalf("Put %q: %v", k, err)
		}
		if n, err := o.Stat(ctx, k); err != nil || n != 2 {
			t.Fatalf("Stat %q: %d, %v", k, n, err)
		}
	}
	testObjectStore(t, o, "team/", func() []string { return listBlobs(t, o) })

	// A wrong key is refused: a *StatusError 403 with Azure's code, and
	// no key in the message.
	bad := base64.StdEncoding.EncodeToString([]byte("not the key of this account at all"))
	ob, err := openAzure(ctx, "mlbuild-cache", url.Values{"localemu": {"true"}, "domain": {az.Host}}, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": remotetest.AzuriteAccount, "AZURE_STORAGE_KEY": bad}))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ob.Open(ctx, "team/ac/replace")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.HasPrefix(se.Body, "AuthorizationFailure: ") {
		t.Fatalf("Open with a wrong key: %v; want a 403 AuthorizationFailure (Azurite's code)", err)
	}
	if strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "SharedKey ") {
		t.Fatalf("the error quotes the credentials: %v", err)
	}
	if _, err := ob.Stat(ctx, "team/ac/replace"); !errors.As(err, &se) || se.Code != http.StatusForbidden || se.Body != "AuthorizationFailure" {
		t.Fatalf("Stat with a wrong key: %v; want a 403 AuthorizationFailure (from x-ms-error-code)", err)
	}

	// A missing container is not a missing object.
	om, err := openAzure(ctx, "no-such-container", url.Values{"localemu": {"true"}, "domain": {az.Host}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := om.Stat(ctx, "x"); errors.Is(err, errNoObject) || !strings.Contains(err.Error(), "ContainerNotFound") {
		t.Fatalf("Stat in a missing container: %v; want ContainerNotFound", err)
	}

	// The same through a connection string.
	cs := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://%s/%s;", remotetest.AzuriteAccount, remotetest.AzuriteKey, az.Host, remotetest.AzuriteAccount)
	oc, err := openAzure(ctx, "mlbuild-cache", url.Values{}, azureOpts(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := oc.Stat(ctx, "team/ac/replace"); err != nil || n != int64(len("second")) {
		t.Fatalf("Stat through a connection string: %d, %v", n, err)
	}
}

// accountSAS makes an account SAS (version 2020-10-02's string to sign)
// for the Blob service with every permission the store needs.
func accountSAS(t *testing.T, account, key string) string {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	const sv, ss, srt, sp, spr = "2020-10-02", "b", "sco", "rwdlac", "https,http"
	se := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05Z")
	sts := strings.Join([]string{account, sp, ss, srt, "", se, "", spr, sv, ""}, "\n")
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(sts))
	q := url.Values{"sv": {sv}, "ss": {ss}, "srt": {srt}, "sp": {sp}, "se": {se}, "spr": {spr}, "sig": {base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
	return q.Encode()
}

// TestAzureObjectStoreAzuriteSAS runs the suite with an account SAS.
func TestAzureObjectStoreAzuriteSAS(t *testing.T) {
	az := remotetest.StartAzurite(t)
	ctx := context.Background()
	q := url.Values{"localemu": {"true"}, "domain": {az.Host}}
	admin, err := openAzure(ctx, "sas-cache", q, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": remotetest.AzuriteAccount, "AZURE_STORAGE_KEY": remotetest.AzuriteKey}))
	if err != nil {
		t.Fatal(err)
	}
	createContainer(t, admin)
	sas := accountSAS(t, remotetest.AzuriteAccount, remotetest.AzuriteKey)
	o, err := openAzure(ctx, "sas-cache", q, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": remotetest.AzuriteAccount, "AZURE_STORAGE_SAS_TOKEN": "?" + sas}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.auth.(*sasAuth); !ok {
		t.Fatalf("auth is %T; want the SAS", o.auth)
	}
	testObjectStore(t, o, "p/", func() []string { return listBlobs(t, admin) })

	// A SAS without write permission is refused, and not quoted.
	ro := strings.Replace(sas, "sp=rwdlac", "sp=r", 1)
	or, err := openAzure(ctx, "sas-cache", q, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": remotetest.AzuriteAccount, "AZURE_STORAGE_SAS_TOKEN": ro}))
	if err != nil {
		t.Fatal(err)
	}
	err = or.Put(ctx, "p/ac/ro", "application/json", 2, strings.NewReader("{}"))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("Put with a read-only SAS: %v; want 403", err)
	}
	sig, _ := url.ParseQuery(ro)
	for _, s := range append(or.Secrets(), sig.Get("sig")) {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("the error quotes the SAS: %v", err)
		}
	}
}

// fakeBlobs is an in-memory Blob service for one account and container,
// path-style: enough of Get Blob Properties, Get Blob, Put Blob, Put
// Block, Put Block List and List Blobs for the conformance suite. check,
// when set, vets every request first (and may refuse it).
type fakeBlobs struct {
	prefix string // /account/container
	check  func(w http.ResponseWriter, r *http.Request) bool

	mu     sync.Mutex
	blobs  map[string][]byte
	staged map[string]map[string][]byte
}

func newFakeBlobs(account, container string) *fakeBlobs {
	return &fakeBlobs{prefix: "/" + account + "/" + container, blobs: map[string][]byte{}, staged: map[string]map[string][]byte{}}
}

func azureFail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("x-ms-error-code", code)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>fake says %s
RequestId:1
Time:now</Message></Error>`, code, code)
}

func (f *fakeBlobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.check != nil && !f.check(w, r) {
		return
	}
	q := r.URL.Query()
	if r.URL.Path == f.prefix && q.Get("restype") == "container" && q.Get("comp") == "list" {
		f.mu.Lock()
		var names []string
		for k := range f.blobs {
			names = append(names, k)
		}
		f.mu.Unlock()
		sort.Strings(names)
		var sb strings.Builder
		sb.WriteString("<EnumerationResults><Blobs>")
		for _, n := range names {
			sb.WriteString("<Blob><Name>")
			_ = xml.EscapeText(&sb, []byte(n))
			sb.WriteString("</Name></Blob>")
		}
		sb.WriteString("</Blobs><NextMarker/></EnumerationResults>")
		_, _ = io.WriteString(w, sb.String())
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, f.prefix+"/")
	if !ok {
		azureFail(w, http.StatusNotFound, "ContainerNotFound")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodHead, http.MethodGet:
		b, ok := f.blobs[key]
		if !ok {
			azureFail(w, http.StatusNotFound, "BlobNotFound")
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
	case http.MethodPut:
		body, err := io.ReadAll(r.Body)
		if err != nil || int64(len(body)) != r.ContentLength {
			azureFail(w, http.StatusBadRequest, "InvalidInput")
			return
		}
		switch q.Get("comp") {
		case "":
			if r.Header.Get("x-ms-blob-type") != "BlockBlob" {
				azureFail(w, http.StatusBadRequest, "MissingRequiredHeader")
				return
			}
			f.blobs[key] = body
			delete(f.staged, key)
		case "block":
			if f.staged[key] == nil {
				f.staged[key] = map[string][]byte{}
			}
			f.staged[key][q.Get("blockid")] = body
		case "blocklist":
			var list struct {
				Latest []string `xml:"Latest"`
			}
			if err := xml.Unmarshal(body, &list); err != nil {
				azureFail(w, http.StatusBadRequest, "InvalidXmlDocument")
				return
			}
			var all []byte
			for _, id := range list.Latest {
				b, ok := f.staged[key][id]
				if !ok {
					azureFail(w, http.StatusBadRequest, "InvalidBlockList")
					return
				}
				all = append(all, b...)
			}
			f.blobs[key] = all
			delete(f.staged, key)
		default:
			azureFail(w, http.StatusBadRequest, "InvalidQueryParameterValue")
			return
		}
		w.WriteHeader(http.StatusCreated)
	default:
		azureFail(w, http.StatusMethodNotAllowed, "UnsupportedHttpVerb")
	}
}

func (f *fakeBlobs) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.blobs {
		out = append(out, k)
	}
	return out
}

// TestAzureObjectStoreBearer runs the suite with a service principal's
// token from a local token endpoint, against the in-memory service, which
// checks the token and the API version on every request.
func TestAzureObjectStoreBearer(t *testing.T) {
	var tokenCalls atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.URL.Path != "/tenant-1/oauth2/v2.0/token" ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != "app-1" ||
			r.PostForm.Get("client_secret") != "very-secret-value" || r.PostForm.Get("scope") != "https://storage.azure.com/.default" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_request","error_description":"AADSTS900144: bad request\r\nTrace ID: x"}`)
			return
		}
		_, _ = io.WriteString(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAi.token-value.sig"}`)
	}))
	defer tokens.Close()
	fake := newFakeBlobs("acct1", "cache")
	fake.check = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer eyJ0eXAi.token-value.sig" {
			azureFail(w, http.StatusUnauthorized, "InvalidAuthenticationInfo")
			return false
		}
		if v := r.Header.Get("x-ms-version"); v < "2017-11-09" {
			azureFail(w, http.StatusBadRequest, "InvalidHeaderValue")
			return false
		}
		return true
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	env := map[string]string{
		"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_TENANT_ID": "tenant-1", "AZURE_CLIENT_ID": "app-1",
		"AZURE_CLIENT_SECRET": "very-secret-value", "AZURE_AUTHORITY_HOST": tokens.URL + "/",
	}
	o, err := openAzure(context.Background(), "cache", url.Values{"localemu": {"true"}, "domain": {strings.TrimPrefix(srv.URL, "http://")}}, azureOpts(t, env))
	if err != nil {
		t.Fatal(err)
	}
	testObjectStore(t, o, "", fake.keys)
	if n := tokenCalls.Load(); n != 1 {
		t.Errorf("%d token requests; want 1 (the token is cached)", n)
	}
	sec := o.Secrets()
	if !contains(sec, "very-secret-value") || !contains(sec, "eyJ0eXAi.token-value.sig") {
		t.Errorf("Secrets() = %d values, without the client secret or the token", len(sec))
	}

	// A refused secret: the endpoint's error, not the secret.
	env["AZURE_CLIENT_ID"] = "app-2"
	o2, err := openAzure(context.Background(), "cache", url.Values{"localemu": {"true"}, "domain": {strings.TrimPrefix(srv.URL, "http://")}}, azureOpts(t, env))
	if err != nil {
		t.Fatal(err)
	}
	_, err = o2.Stat(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "AADSTS900144") || strings.Contains(err.Error(), "very-secret-value") || strings.Contains(err.Error(), "Trace ID") {
		t.Fatalf("Stat with a refused client secret: %v", err)
	}
}

// TestAzureTokenSources checks the workload identity, App Service and IMDS
// token requests against local endpoints, and that a token near its
// expiry is replaced.
func TestAzureTokenSources(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Form.Encode()+" "+r.Header.Get("Metadata")+r.Header.Get("X-Identity-Header"))
		mu.Unlock()
		switch r.URL.Path {
		case "/t/oauth2/v2.0/token":
			_, _ = io.WriteString(w, `{"access_token":"wi-token","expires_in":3600}`)
		case "/appservice":
			fmt.Fprintf(w, `{"access_token":"as-token","expires_on":"%d"}`, time.Now().Add(time.Hour).Unix())
		case "/imds":
			// Expires within the margin: fetched anew each time.
			_, _ = io.WriteString(w, `{"access_token":"imds-token","expires_in":"60"}`)
		}
	}))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("federated-jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	noAmbientAzure(t)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		imds  bool
		token string
		want  string
	}{
		{"workload identity", map[string]string{"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": tokenFile, "AZURE_AUTHORITY_HOST": srv.URL}, false, "wi-token",
			"POST /t/oauth2/v2.0/token client_assertion=federated-jwt&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id=c&grant_type=client_credentials&scope=https%3A%2F%2Fstorage.azure.com%2F.default "},
		{"app service", map[string]string{"IDENTITY_ENDPOINT": srv.URL + "/appservice", "IDENTITY_HEADER": "hdr-secret"}, false, "as-token",
			"GET /appservice api-version=2019-08-01&resource=https%3A%2F%2Fstorage.azure.com%2F hdr-secret"},
		{"imds", map[string]string{"AZURE_CLIENT_ID": "uami"}, true, "imds-token",
			"GET /imds api-version=2018-02-01&client_id=uami&resource=https%3A%2F%2Fstorage.azure.com%2F true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			oldEP := azureIMDSEndpoint
			azureIMDSEndpoint = srv.URL + "/imds"
			onAzureVM = func() bool { return tc.imds }
			defer func() { azureIMDSEndpoint = oldEP; onAzureVM = func() bool { return false } }()
			a, err := newAzureADAuth(func(k string) string { return tc.env[k] }, srv.Client())
			if err != nil || a == nil {
				t.Fatalf("newAzureADAuth: %v, %v", a, err)
			}
			for range 2 {
				tok, err := a.token(ctx)
				if err != nil || tok != tc.token {
					t.Fatalf("token: %q, %v", tok, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			wantCalls := 1
			if tc.imds {
				wantCalls = 2
			}
			if len(got) != wantCalls || got[0] != tc.want {
				t.Fatalf("requests %q; want %d of %q", got, wantCalls, tc.want)
			}
		})
	}
}

// TestAzureNoCredentials: with nothing to authenticate with, openAzure
// fails naming the variables to set.
func TestAzureNoCredentials(t *testing.T) {
	_, err := openAzure(context.Background(), "cache", url.Values{}, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1"}))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "AZURE_STORAGE_KEY") || !strings.Contains(err.Error(), "AZURE_CLIENT_SECRET") {
		t.Fatalf("openAzure without credentials: %v", err)
	}
	_, err = openAzure(context.Background(), "cache", url.Values{}, azureOpts(t, map[string]string{"AZURE_STORAGE_KEY": remotetest.AzuriteKey}))
	if err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_ACCOUNT") || strings.Contains(err.Error(), remotetest.AzuriteKey) {
		t.Fatalf("openAzure without an account: %v", err)
	}
	_, err = openAzure(context.Background(), "cache", url.Values{}, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": "not base64!"}))
	if err == nil || strings.Contains(err.Error(), "not base64!") {
		t.Fatalf("openAzure with a bad key: %v", err)
	}
}

// TestAzureUnknownParameter: an unknown URL parameter is refused, naming
// the known ones.
func TestAzureUnknownParameter(t *testing.T) {
	env := map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": remotetest.AzuriteKey}
	_, err := openAzure(context.Background(), "cache", url.Values{"cdn": {"true"}}, azureOpts(t, env))
	if err == nil || !strings.Contains(err.Error(), `"cdn"`) || !strings.Contains(err.Error(), "localemu") {
		t.Fatalf("openAzure with ?cdn=true: %v", err)
	}
	for _, q := range []url.Values{{"protocol": {"ftp"}}, {"localemu": {"maybe"}}, {"domain": {"evil.com/x"}}} {
		if _, err := openAzure(context.Background(), "cache", q, azureOpts(t, env)); err == nil {
			t.Errorf("openAzure with %v: no error", q)
		}
	}
	if _, err := openAzure(context.Background(), "Bad_Name", url.Values{}, azureOpts(t, env)); err == nil {
		t.Error("openAzure with an invalid container name: no error")
	}
}

// TestAzureEndpoints checks the container URL each configuration gives.
func TestAzureEndpoints(t *testing.T) {
	key := remotetest.AzuriteKey
	for _, tc := range []struct {
		env  map[string]string
		q    url.Values
		want string
	}{
		{map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": key}, nil, "https://acct1.blob.core.windows.net/c01"},
		{map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": key, "AZURE_STORAGE_DOMAIN": "core.chinacloudapi.cn"}, nil, "https://acct1.blob.core.chinacloudapi.cn/c01"},
		{map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": key, "AZURE_STORAGE_DOMAIN": "x.net"}, url.Values{"domain": {"core.usgovcloudapi.net"}, "protocol": {"http"}}, "http://acct1.blob.core.usgovcloudapi.net/c01"},
		{map[string]string{"AZURE_STORAGE_ACCOUNT": "devstoreaccount1", "AZURE_STORAGE_KEY": key, "AZURE_STORAGE_IS_LOCAL_EMULATOR": "true", "AZURE_STORAGE_DOMAIN": "localhost:10010"}, nil, "http://localhost:10010/devstoreaccount1/c01"},
		{map[string]string{"AZURE_STORAGE_ACCOUNT": "devstoreaccount1", "AZURE_STORAGE_KEY": key, "AZURE_STORAGE_PROTOCOL": "https"}, url.Values{"localemu": {"true"}}, "https://127.0.0.1:10000/devstoreaccount1/c01"},
		{map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}, nil, "http://127.0.0.1:10000/devstoreaccount1/c01"},
		{map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct2;AccountKey=" + key + ";EndpointSuffix=core.windows.net"}, nil, "https://acct2.blob.core.windows.net/c01"},
		{map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "BlobEndpoint=https://acct3.blob.core.windows.net/;SharedAccessSignature=sv=2020-10-02&sig=abcd"}, nil, "https://acct3.blob.core.windows.net/c01"},
	} {
		o, err := openAzure(context.Background(), "c01", tc.q, azureOpts(t, tc.env))
		if err != nil {
			t.Errorf("%v %v: %v", tc.env, tc.q, err)
			continue
		}
		if o.base != tc.want {
			t.Errorf("%v %v: %s; want %s", tc.env, tc.q, o.base, tc.want)
		}
	}
}

// TestAzureSharedKeyStringToSign checks the canonical string against the
// example of Azure's "Authorize with Shared Key" documentation (a Get
// Container Metadata request), and the rules for a Put Block.
func TestAzureSharedKeyStringToSign(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata&timeout=20", nil)
	req.Header.Set("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT")
	req.Header.Set("x-ms-version", "2015-02-21")
	want := "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20"
	if got := sharedKeyStringToSign("myaccount", req); got != want {
		t.Errorf("string to sign:\n%q\nwant\n%q", got, want)
	}
	// A Put Block: Content-Length and Content-Type signed, the block ID
	// decoded, a path segment escaped as sent; Content-Length 0 empty.
	req, _ = http.NewRequest(http.MethodPut, "https://acct.blob.core.windows.net/c/team%20x/cas/a?comp=block&blockid=bWxidWlsZC0wMDAwMDE%3D", strings.NewReader("hello"))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("x-ms-date", "Mon, 07 Dec 2026 10:00:00 GMT")
	req.Header.Set("x-ms-version", azureVersion)
	req.Header.Set("X-Ms-Blob-Type", "BlockBlob")
	want = "PUT\n\n\n5\n\napplication/octet-stream\n\n\n\n\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:Mon, 07 Dec 2026 10:00:00 GMT\nx-ms-version:" + azureVersion + "\n/acct/c/team%20x/cas/a\nblockid:bWxidWlsZC0wMDAwMDE=\ncomp:block"
	if got := sharedKeyStringToSign("acct", req); got != want {
		t.Errorf("string to sign:\n%q\nwant\n%q", got, want)
	}
	req.ContentLength = 0
	if got := sharedKeyStringToSign("acct", req); !strings.HasPrefix(got, "PUT\n\n\n\n\n") {
		t.Errorf("Content-Length 0 is signed: %q", got)
	}
	// The signature: HMAC-SHA256 of that string under the decoded key.
	a, err := newSharedKey("acct", remotetest.AzuriteKey, "AZURE_STORAGE_KEY")
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 5
	if err := a.authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	k, _ := base64.StdEncoding.DecodeString(remotetest.AzuriteKey)
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(want))
	if got, want := req.Header.Get("Authorization"), "SharedKey acct:"+base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("Authorization %q; want %q", got, want)
	}
}

// TestAzureSASAppended: the SAS goes on every request's query, after the
// request's own parameters, and never into an error.
func TestAzureSASAppended(t *testing.T) {
	const sas = "sv=2020-10-02&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
	fake := newFakeBlobs("acct1", "cache")
	fake.check = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "" || r.URL.Query().Get("sig") != "c2VjcmV0LXNpZ25hdHVyZQ==" || !strings.HasSuffix(r.URL.RawQuery, sas) {
			azureFail(w, http.StatusForbidden, "AuthenticationFailed")
			return false
		}
		return true
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	q := url.Values{"localemu": {"true"}, "domain": {strings.TrimPrefix(srv.URL, "http://")}}
	o, err := openAzure(context.Background(), "cache", q, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_SAS_TOKEN": "?" + sas}))
	if err != nil {
		t.Fatal(err)
	}
	testObjectStore(t, o, "", fake.keys)

	fake.check = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("x-ms-error-code", "AuthorizationPermissionMismatch")
		w.WriteHeader(http.StatusForbidden)
		// A service echoing the request back.
		fmt.Fprintf(w, "<Error><Code>AuthorizationPermissionMismatch</Code><Message>no %s</Message></Error>", r.URL.String())
		return false
	}
	_, _, err = o.Open(context.Background(), "ac/x")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(err.Error(), "AuthorizationPermissionMismatch") {
		t.Fatalf("Open refused: %v; want a 403 AuthorizationPermissionMismatch", err)
	}
	if strings.Contains(err.Error(), "c2VjcmV0LXNpZ25hdHVyZQ") {
		t.Fatalf("the error quotes the SAS: %v", err)
	}
}

// TestAzureErrors: 403 with Azure's code, the detail that quotes the
// signed string left out; 503 on GET retried, on PUT not.
func TestAzureErrors(t *testing.T) {
	old := azureRetryWait
	azureRetryWait = time.Millisecond
	defer func() { azureRetryWait = old }()
	var calls atomic.Int32
	var mode atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch mode.Load() {
		case "403":
			w.Header().Set("x-ms-error-code", "AuthenticationFailed")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.\nRequestId:abc\nTime:2026-12-07T10:00:00Z</Message><AuthenticationErrorDetail>The MAC signature found in the HTTP request '%s' is not the same as any computed signature.</AuthenticationErrorDetail></Error>", r.Header.Get("Authorization"))
		case "503":
			if n < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Length", "2")
			_, _ = io.WriteString(w, "ok")
		case "503-always":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "<Error><Code>ServerBusy</Code><Message>busy</Message></Error>")
		}
	}))
	defer srv.Close()
	q := url.Values{"localemu": {"true"}, "domain": {strings.TrimPrefix(srv.URL, "http://")}}
	o, err := openAzure(context.Background(), "cache", q, azureOpts(t, map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": remotetest.AzuriteKey}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	mode.Store("403")
	_, _, err = o.Open(ctx, "ac/k")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 403 || !strings.HasPrefix(se.Body, "AuthenticationFailed: Server failed") || strings.Contains(se.Body, "RequestId") {
		t.Fatalf("Open answered 403: %v", err)
	}
	if strings.Contains(err.Error(), "SharedKey") || strings.Contains(err.Error(), remotetest.AzuriteKey) || !strings.Contains(err.Error(), "AZURE_STORAGE_KEY") {
		t.Fatalf("403 message: %v; want no signature nor key, and the variable named", err)
	}
	if !strings.Contains(err.Error(), "azblob://cache") || !strings.Contains(err.Error(), "ac/k") {
		t.Fatalf("403 message names neither the container nor the key: %v", err)
	}

	mode.Store("503")
	calls.Store(0)
	rc, n, err := o.Open(ctx, "ac/k")
	if err != nil || n != 2 || calls.Load() != 3 {
		t.Fatalf("Open answered 503 twice: %d bytes, %v, after %d requests; want success after 3", n, err, calls.Load())
	}
	_ = rc.Close()

	mode.Store("503-always")
	calls.Store(0)
	_, err = o.Stat(ctx, "ac/k")
	if !errors.As(err, &se) || se.Code != 503 || calls.Load() != 3 || !IsUnavailable(err) {
		t.Fatalf("Stat always answered 503: %v after %d requests; want a 503 after 3", err, calls.Load())
	}
	calls.Store(0)
	err = o.Put(ctx, "ac/k", "application/json", 2, strings.NewReader("{}"))
	if !errors.As(err, &se) || se.Code != 503 || se.Body != "ServerBusy: busy" || calls.Load() != 1 {
		t.Fatalf("Put answered 503: %v after %d requests; want a 503 ServerBusy after 1", err, calls.Load())
	}
}

// TestAzureTokenCacheConcurrent: concurrent requests share one fetch.
func TestAzureTokenCacheConcurrent(t *testing.T) {
	var fetches atomic.Int32
	a := &bearerAuth{from: "test", fetch: func(context.Context) (azureToken, error) {
		fetches.Add(1)
		time.Sleep(10 * time.Millisecond)
		return azureToken{value: "tok", expires: time.Now().Add(time.Hour)}, nil
	}}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, "https://a.blob.core.windows.net/c/k", nil)
			if err := a.authorize(context.Background(), req); err != nil || req.Header.Get("Authorization") != "Bearer tok" {
				t.Errorf("authorize: %v, %q", err, req.Header.Get("Authorization"))
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches; want 1", n)
	}
}

// FuzzAzureErrorBody: whatever the body, parseAzureError neither panics
// nor returns text that is not one printable line of bounded length.
func FuzzAzureErrorBody(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.
RequestId:4b9d
Time:2026-12-07T10:00:00.0000000Z</Message></Error>`))
	f.Add([]byte(`<Error><Code>AuthenticationFailed</Code><Message>x</Message><AuthenticationErrorDetail>sig</AuthenticationErrorDetail></Error>`))
	f.Add([]byte(`<Error><Code></Code></Error>`))
	f.Add([]byte(`<html><body>Bad Gateway</body></html>`))
	f.Add([]byte("<Error><Message>\x00\x1b[31m\xff\xfe</Message></Error>"))
	f.Add([]byte(`<Error><Code>` + strings.Repeat("A", 5000) + `</Code></Error>`))
	f.Add([]byte(``))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><Error><Code>&a;</Code></Error>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code, msg := parseAzureError(body)
		for _, s := range []string{code, msg} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\t\x00") || len(s) > 310 {
				t.Fatalf("parseAzureError gave %q", s)
			}
			for _, r := range s {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("control character in %q", s)
				}
			}
		}
	})
}

// TestAzureCLIToken: with nothing else configured, a token comes from
// `az account get-access-token` on PATH (here a script), after IMDS on an
// Azure VM refuses.
func TestAzureCLIToken(t *testing.T) {
	noAmbientAzure(t)
	dir := t.TempDir()
	script := "#!/bin/sh\n[ \"$*\" = 'account get-access-token --resource https://storage.azure.com/ -o json' ] || { echo \"bad args: $*\" >&2; exit 2; }\n" +
		fmt.Sprintf("echo '{\"accessToken\":\"cli-token\",\"expiresOn\":\"2000-01-01 00:00:00.000000\",\"expires_on\":%d,\"tokenType\":\"Bearer\"}'\n", time.Now().Add(time.Hour).Unix())
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	azureCLI = "az"
	var imdsCalls atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imdsCalls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_request","error_description":"Identity not found"}`)
	}))
	defer imds.Close()
	oldEP := azureIMDSEndpoint
	azureIMDSEndpoint = imds.URL
	defer func() { azureIMDSEndpoint = oldEP }()
	onAzureVM = func() bool { return true }
	a, err := newAzureADAuth(func(k string) string { return map[string]string{"PATH": dir}[k] }, imds.Client())
	if err != nil || a == nil {
		t.Fatalf("newAzureADAuth: %v, %v", a, err)
	}
	for range 2 {
		if tok, err := a.token(context.Background()); err != nil || tok != "cli-token" {
			t.Fatalf("token: %q, %v", tok, err)
		}
	}
	if n := imdsCalls.Load(); n != 1 {
		t.Errorf("%d IMDS requests; want 1 (then the CLI, kept)", n)
	}
	// Without az on PATH and off Azure there is no source at all.
	onAzureVM = func() bool { return false }
	if a, err := newAzureADAuth(func(string) string { return "" }, imds.Client()); a != nil || err != nil {
		t.Fatalf("newAzureADAuth with nothing: %v, %v; want none", a, err)
	}
}
