package remote

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Credentials for azblob:// containers, in the order they are looked for:
// a Shared Key (the account key), a shared access signature (SAS), then an
// Azure AD (Entra ID) bearer token from a service principal's secret, a
// workload identity's federated token, a managed identity, or the Azure
// CLI. The code is this package's own, over net/http: see objects.go on
// why no Azure SDK is linked.

// azureAuth authorizes a request to the Blob service. Implementations are
// safe for concurrent use.
type azureAuth interface {
	// authorize adds the credentials to req, whose x-ms-date and
	// x-ms-version headers are set and whose body, if any, has its
	// ContentLength set.
	authorize(ctx context.Context, req *http.Request) error
	// source names where the credentials came from (variables, not
	// values), for the message of a refused request.
	source() string
	// secrets lists the credential values in use, to scrub from messages.
	secrets() []string
}

// azureStorageResource is the Azure AD resource (audience) of Azure
// Storage; azureStorageScope the OAuth 2.0 v2 scope naming it.
const (
	azureStorageResource = "https://storage.azure.com/"
	azureStorageScope    = "https://storage.azure.com/.default"
)

// azureCredentialHelp is what to set when no credentials are found or
// they are refused.
const azureCredentialHelp = "set AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or AZURE_STORAGE_CONNECTION_STRING, or an Azure AD identity: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal) or AZURE_FEDERATED_TOKEN_FILE (workload identity), a managed identity, or `az login`"

// sharedKeyAuth signs requests with the account key ("Authorize with
// Shared Key" in the Azure Storage REST documentation).
type sharedKeyAuth struct {
	account string
	key     []byte // decoded
	encoded string // as given, a secret
	from    string
}

// newSharedKey decodes a base64 account key; from names the variable it
// came from, for messages (which never quote the key).
func newSharedKey(account, key, from string) (*sharedKeyAuth, error) {
	if account == "" {
		return nil, fmt.Errorf("%s is set but no account name: set AZURE_STORAGE_ACCOUNT (or AccountName in the connection string)", from)
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
	if err != nil || len(dec) == 0 {
		return nil, fmt.Errorf("%s is not a base64 account key (copy key1 or key2 from the storage account's Access keys)", from)
	}
	return &sharedKeyAuth{account: account, key: dec, encoded: key, from: from}, nil
}

// source names the key's variable.
func (a *sharedKeyAuth) source() string { return a.from + " (Shared Key)" }

// secrets is the key as given.
func (a *sharedKeyAuth) secrets() []string { return []string{a.encoded, strings.TrimSpace(a.encoded)} }

// authorize sets the SharedKey Authorization header: HMAC-SHA256 of the
// canonical string under the decoded key.
func (a *sharedKeyAuth) authorize(_ context.Context, req *http.Request) error {
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(sharedKeyStringToSign(a.account, req)))
	req.Header.Set("Authorization", "SharedKey "+a.account+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return nil
}

// sharedKeyStringToSign is the string a Shared Key signs for req (for the
// Blob service, versions 2009-09-19 and later): the verb, the standard
// headers (Content-Length empty when 0), the canonicalized x-ms- headers
// and the canonicalized resource, /account/path then each query parameter
// as "\nname:value" sorted by name.
func sharedKeyStringToSign(account string, req *http.Request) string {
	var sb strings.Builder
	sb.WriteString(req.Method)
	sb.WriteByte('\n')
	length := ""
	if req.ContentLength > 0 {
		length = strconv.FormatInt(req.ContentLength, 10)
	} else if v := req.Header.Get("Content-Length"); v != "" && v != "0" {
		length = v
	}
	for _, h := range []string{"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"} {
		v := req.Header.Get(h)
		if h == "Content-Length" {
			v = length
		}
		sb.WriteString(v)
		sb.WriteByte('\n')
	}
	// Canonicalized headers: every x-ms- header, lowercase, sorted, its
	// value with runs of white space folded (values of one header joined
	// by commas).
	var names []string
	for k := range req.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-ms-") {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	for _, k := range names {
		vals := make([]string, len(req.Header[k]))
		for i, v := range req.Header[k] {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		sb.WriteString(strings.ToLower(k))
		sb.WriteByte(':')
		sb.WriteString(strings.Join(vals, ","))
		sb.WriteByte('\n')
	}
	sb.WriteByte('/')
	sb.WriteString(account)
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	sb.WriteString(path)
	q := req.URL.Query()
	keys := make([]string, 0, len(q))
	lower := make(map[string][]string, len(q))
	for k, v := range q {
		lk := strings.ToLower(k)
		if _, ok := lower[lk]; !ok {
			keys = append(keys, lk)
		}
		lower[lk] = append(lower[lk], v...)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := lower[k]
		sort.Strings(vals)
		sb.WriteByte('\n')
		sb.WriteString(k)
		sb.WriteByte(':')
		sb.WriteString(strings.Join(vals, ","))
	}
	return sb.String()
}

// sasAuth appends a shared access signature to every request's query.
type sasAuth struct {
	token string // without the leading '?'
	from  string
}

// newSAS checks that token parses as a query string carrying a signature.
func newSAS(token, from string) (*sasAuth, error) {
	token = strings.TrimPrefix(strings.TrimSpace(token), "?")
	q, err := url.ParseQuery(token)
	if err != nil || q.Get("sig") == "" {
		return nil, fmt.Errorf("%s is not a shared access signature (a query string such as sv=...&sig=..., as the portal's \"SAS token\" field shows it)", from)
	}
	return &sasAuth{token: token, from: from}, nil
}

// source names the SAS's variable.
func (a *sasAuth) source() string { return a.from + " (SAS)" }

// secrets are the token and its signature, also URL-escaped.
func (a *sasAuth) secrets() []string {
	s := []string{a.token}
	if q, err := url.ParseQuery(a.token); err == nil {
		if sig := q.Get("sig"); sig != "" {
			s = append(s, sig, url.QueryEscape(sig))
		}
	}
	return s
}

// authorize appends the SAS to the request's query.
func (a *sasAuth) authorize(_ context.Context, req *http.Request) error {
	if req.URL.RawQuery == "" {
		req.URL.RawQuery = a.token
	} else {
		req.URL.RawQuery += "&" + a.token
	}
	return nil
}

// bearerAuth sends an Azure AD access token for Azure Storage, fetched by
// fetch and cached until shortly before it expires.
type bearerAuth struct {
	from  string
	fetch func(ctx context.Context) (azureToken, error)
	// static are secrets known up front (a client secret).
	static []string

	mu    sync.Mutex
	tok   azureToken
	seen  []string // every token handed out, to scrub
	extra []string // other secrets read on the way (a federated token)
}

// azureToken is an access token and when it expires.
type azureToken struct {
	value   string
	expires time.Time
}

// azureTokenMargin is how long before its expiry a token is replaced.
const azureTokenMargin = 5 * time.Minute

// source names where tokens come from.
func (a *bearerAuth) source() string { return a.from + " (Azure AD token)" }

// secrets are the static secrets and the tokens handed out.
func (a *bearerAuth) secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append(append(append([]string(nil), a.static...), a.extra...), a.seen...)
}

// token returns a valid token, fetching one when none is cached or the
// cached one is about to expire. Concurrent callers wait for one fetch.
func (a *bearerAuth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok.value != "" && time.Until(a.tok.expires) > azureTokenMargin {
		return a.tok.value, nil
	}
	t, err := a.fetch(ctx)
	if err != nil {
		return "", err
	}
	if t.value == "" {
		return "", errors.New("the token endpoint returned no access token")
	}
	if t.expires.IsZero() {
		t.expires = time.Now().Add(azureTokenMargin + time.Minute)
	}
	a.tok = t
	a.seen = append(a.seen, t.value)
	if len(a.seen) > 8 {
		a.seen = a.seen[len(a.seen)-8:]
	}
	return t.value, nil
}

// addSecret records a secret read while fetching (a federated token).
func (a *bearerAuth) addSecret(s string) {
	if s == "" {
		return
	}
	for _, e := range a.extra {
		if e == s {
			return
		}
	}
	a.extra = append(a.extra, s)
	if len(a.extra) > 8 {
		a.extra = a.extra[len(a.extra)-8:]
	}
}

// authorize sets a Bearer Authorization header with a cached token.
func (a *bearerAuth) authorize(ctx context.Context, req *http.Request) error {
	tok, err := a.token(ctx)
	if err != nil {
		return fmt.Errorf("get an Azure AD token from %s: %w", a.from, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// Where Azure AD tokens come from; variables so that tests can point them
// at local servers.
var (
	// azureIMDSEndpoint is the Azure Instance Metadata Service's token
	// endpoint (managed identity on a VM, VM scale set or AKS node).
	azureIMDSEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"
	// azureIMDSTimeout bounds a request to IMDS, which off Azure never
	// answers.
	azureIMDSTimeout = 2 * time.Second
	// onAzureVM reports whether this machine is an Azure VM, where IMDS
	// may hand out a managed identity's tokens.
	onAzureVM = azureVMByDMI
	// azureCLI is the Azure CLI's name on PATH.
	azureCLI = "az"
)

// azureVMByDMI recognizes an Azure VM by the chassis asset tag Hyper-V
// sets on Azure (a local file: no network I/O).
func azureVMByDMI() bool {
	b, err := os.ReadFile("/sys/class/dmi/id/chassis_asset_tag")
	return err == nil && strings.TrimSpace(string(b)) == "7783-7084-3265-9085-8269-3286-77"
}

// newAzureADAuth picks an Azure AD token source from the environment, or
// returns nil when there is none. client makes the token requests.
func newAzureADAuth(getenv func(string) string, client *http.Client) (*bearerAuth, error) {
	tenant, clientID := getenv("AZURE_TENANT_ID"), getenv("AZURE_CLIENT_ID")
	authority := strings.TrimRight(getenv("AZURE_AUTHORITY_HOST"), "/")
	if authority == "" {
		authority = "https://login.microsoftonline.com"
	}
	if getenv("AZURE_AUTHORITY_HOST") != "" {
		au, err := url.Parse(authority)
		if err != nil || au.Host == "" || (au.Scheme != "https" && !(au.Scheme == "http" && isLoopback(au.Hostname()))) {
			return nil, errors.New("AZURE_AUTHORITY_HOST is not an https URL (such as https://login.microsoftonline.us)")
		}
	}
	tokenURL := authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	switch secret, file := getenv("AZURE_CLIENT_SECRET"), getenv("AZURE_FEDERATED_TOKEN_FILE"); {
	case secret != "":
		if tenant == "" || clientID == "" {
			return nil, errors.New("AZURE_CLIENT_SECRET is set without AZURE_TENANT_ID and AZURE_CLIENT_ID: set all three for a service principal")
		}
		a := &bearerAuth{from: "AZURE_CLIENT_SECRET", static: []string{secret, url.QueryEscape(secret)}}
		a.fetch = func(ctx context.Context) (azureToken, error) {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {azureStorageScope}}
			return postTokenForm(ctx, client, tokenURL, form)
		}
		return a, nil
	case file != "":
		if tenant == "" || clientID == "" {
			return nil, errors.New("AZURE_FEDERATED_TOKEN_FILE is set without AZURE_TENANT_ID and AZURE_CLIENT_ID: set all three for a workload identity")
		}
		a := &bearerAuth{from: "AZURE_FEDERATED_TOKEN_FILE"}
		a.fetch = func(ctx context.Context) (azureToken, error) {
			// Read each time: the file is rotated under us.
			b, err := os.ReadFile(file)
			if err != nil {
				return azureToken{}, fmt.Errorf("read the federated token: %w", err)
			}
			assertion := strings.TrimSpace(string(b))
			a.addSecret(assertion)
			form := url.Values{
				"grant_type":            {"client_credentials"},
				"client_id":             {clientID},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {assertion},
				"scope":                 {azureStorageScope},
			}
			return postTokenForm(ctx, client, tokenURL, form)
		}
		return a, nil
	}
	if ep, hdr := getenv("IDENTITY_ENDPOINT"), getenv("IDENTITY_HEADER"); ep != "" && hdr != "" {
		// App Service, Functions, Container Apps: a local endpoint with
		// a per-process secret header.
		a := &bearerAuth{from: "IDENTITY_ENDPOINT", static: []string{hdr}}
		a.fetch = func(ctx context.Context) (azureToken, error) {
			q := url.Values{"api-version": {"2019-08-01"}, "resource": {azureStorageResource}}
			if clientID != "" {
				q.Set("client_id", clientID)
			}
			return getToken(ctx, client, ep, q, http.Header{"X-Identity-Header": {hdr}}, 0)
		}
		return a, nil
	}
	var chain []func(ctx context.Context) (azureToken, error)
	var names []string
	if onAzureVM() {
		chain = append(chain, func(ctx context.Context) (azureToken, error) {
			q := url.Values{"api-version": {"2018-02-01"}, "resource": {azureStorageResource}}
			if clientID != "" {
				q.Set("client_id", clientID)
			}
			return getToken(ctx, client, azureIMDSEndpoint, q, http.Header{"Metadata": {"true"}}, azureIMDSTimeout)
		})
		names = append(names, "managed identity (IMDS)")
	}
	if path := lookPath(azureCLI, getenv("PATH")); path != "" {
		chain = append(chain, func(ctx context.Context) (azureToken, error) { return cliToken(ctx, path) })
		names = append(names, "the Azure CLI")
	}
	if len(chain) == 0 {
		return nil, nil
	}
	a := &bearerAuth{from: strings.Join(names, ", then ")}
	// The first source that hands out a token is kept for the next ones.
	var picked func(ctx context.Context) (azureToken, error)
	a.fetch = func(ctx context.Context) (azureToken, error) {
		if picked != nil {
			return picked(ctx)
		}
		var errs []string
		for i, f := range chain {
			t, err := f(ctx)
			if err == nil {
				picked = f
				return t, nil
			}
			if ctx.Err() != nil {
				return azureToken{}, ctx.Err()
			}
			errs = append(errs, names[i]+": "+err.Error())
		}
		return azureToken{}, fmt.Errorf("%w: %s (%s)", ErrAuth, strings.Join(errs, "; "), azureCredentialHelp)
	}
	return a, nil
}

// lookPath finds an executable named name in the directories of path (a
// PATH value, read through Options.Getenv rather than the process's);
// "" when there is none.
func lookPath(name, path string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// azureTokenResponse is the JSON of the token endpoints: Azure AD's (a
// number expires_in), IMDS and App Service (strings), the Azure CLI's
// (accessToken, expiresOn, and in newer versions expires_on).
type azureTokenResponse struct {
	AccessToken    string  `json:"access_token"`
	ExpiresIn      flexInt `json:"expires_in"`
	ExpiresOn      flexInt `json:"expires_on"`
	CLIAccessToken string  `json:"accessToken"`
	CLIExpiresOn   string  `json:"expiresOn"`
	Error          string  `json:"error"`
	ErrorDesc      string  `json:"error_description"`
}

// flexInt is a JSON integer given as a number or as a string.
type flexInt int64

// UnmarshalJSON takes 3600 or "3600"; anything else leaves f 0.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Tolerated: the token still works, with a short assumed life.
		return nil
	}
	*f = flexInt(n)
	return nil
}

// expiry is when the token expires, from whichever field is set.
func (r *azureTokenResponse) expiry(now time.Time) time.Time {
	switch {
	case r.ExpiresOn > 0:
		return time.Unix(int64(r.ExpiresOn), 0)
	case r.ExpiresIn > 0:
		return now.Add(time.Duration(r.ExpiresIn) * time.Second)
	case r.CLIExpiresOn != "":
		// The CLI's expiresOn is local time, without a zone.
		for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02 15:04:05"} {
			if t, err := time.ParseInLocation(layout, r.CLIExpiresOn, time.Local); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// postTokenForm asks an Azure AD token endpoint for a token.
func postTokenForm(ctx context.Context, client *http.Client, tokenURL string, form url.Values) (azureToken, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return azureToken{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return doToken(client, req)
}

// getToken asks a managed identity endpoint for a token, within timeout
// when it is not 0.
func getToken(ctx context.Context, client *http.Client, endpoint string, q url.Values, h http.Header, timeout time.Duration) (azureToken, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return azureToken{}, fmt.Errorf("token endpoint: %w", err)
	}
	uq := u.Query()
	for k, v := range q {
		uq[k] = v
	}
	u.RawQuery = uq.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return azureToken{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return doToken(client, req)
}

// doToken sends a token request and parses the answer. Its errors carry
// the endpoint's error code and description, never the request.
func doToken(client *http.Client, req *http.Request) (azureToken, error) {
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL may carry a client_id: leave it out
		}
		return azureToken{}, &unavailableError{fmt.Errorf("token request to %s: %w", req.URL.Host, err)}
	}
	defer drain(resp)
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return azureToken{}, fmt.Errorf("token response from %s: %w", req.URL.Host, err)
	}
	var tr azureTokenResponse
	jerr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		msg := tr.Error
		if tr.ErrorDesc != "" {
			// The description's first line: the rest is trace and
			// correlation ids.
			d, _, _ := strings.Cut(tr.ErrorDesc, "\n")
			msg += ": " + strings.TrimSpace(d)
		}
		if msg == "" {
			msg = cleanSnippet(body)
		}
		err := fmt.Errorf("token request to %s: %s: %s", req.URL.Host, resp.Status, sanitizeAzureText(msg))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			// The identity was refused (or does not exist).
			return azureToken{}, fmt.Errorf("%w: %w", ErrAuth, err)
		}
		return azureToken{}, &unavailableError{err}
	}
	if jerr != nil {
		return azureToken{}, fmt.Errorf("token response from %s: not JSON: %v", req.URL.Host, jerr)
	}
	return azureToken{value: tr.AccessToken, expires: tr.expiry(time.Now())}, nil
}

// cliToken runs `az account get-access-token` for Azure Storage.
func cliToken(ctx context.Context, az string) (azureToken, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, az, "account", "get-access-token", "--resource", azureStorageResource, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		if ctx.Err() != nil {
			return azureToken{}, fmt.Errorf("az account get-access-token: %w", ctx.Err())
		}
		return azureToken{}, fmt.Errorf("%w: az account get-access-token: %v: %s (run `az login`)", ErrAuth, err, sanitizeAzureText(msg))
	}
	var tr azureTokenResponse
	if err := json.Unmarshal(stdout.Bytes(), &tr); err != nil {
		return azureToken{}, fmt.Errorf("az account get-access-token: output is not JSON: %v", err)
	}
	return azureToken{value: tr.CLIAccessToken, expires: tr.expiry(time.Now())}, nil
}
