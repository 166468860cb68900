package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// azblob:// containers are spoken to here, over the Blob service's REST
// API with net/http: Get Blob Properties, Get Blob, Put Blob, and Put
// Block + Put Block List for objects larger than partSize.

// azureVersion is the Blob service API version requested (x-ms-version).
// Bearer tokens need 2017-11-09 or later.
const azureVersion = "2021-08-06"

// azureMaxBlocks is the most blocks one block blob may have.
const azureMaxBlocks = 50000

// azureRetryWait is the wait before the first retry of a read the service
// answers "try again" (429, 5xx); the second waits twice as long.
// A variable for tests.
var azureRetryWait = 250 * time.Millisecond

// azureObjects is one Azure Blob Storage container, as an objectStore.
type azureObjects struct {
	container string
	base      string // scheme://host[/account]/container, no trailing slash
	client    *http.Client
	auth      azureAuth
	secrets   []string // besides the auth's: the connection string
}

// azureParams are the URL parameters of azblob:// (prefix aside).
var azureParams = []string{"domain", "protocol", "localemu"}

// azureSettings is what the environment and the URL say of the endpoint
// and the credentials.
type azureSettings struct {
	account, key, sas          string
	keyFrom, sasFrom           string
	blobEndpoint               string // a connection string's BlobEndpoint
	protocol, domain           string
	localEmu                   bool
	fromConnStr                bool
	protocolSet, domainFromURL bool
}

// azuriteKey is the well-known account key of the storage emulators'
// account devstoreaccount1 (documented by Microsoft; not a secret).
const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// parseConnectionString reads an Azure Storage connection string
// ("AccountName=...;AccountKey=...;EndpointSuffix=..."), or
// "UseDevelopmentStorage=true" for the local emulator, into s.
func parseConnectionString(cs string, s *azureSettings) error {
	s.fromConnStr = true
	for _, part := range strings.Split(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return errors.New("AZURE_STORAGE_CONNECTION_STRING is not a connection string (Key=value pairs separated by ';')")
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "accountname":
			s.account = v
		case "accountkey":
			s.key, s.keyFrom = v, "AZURE_STORAGE_CONNECTION_STRING"
		case "sharedaccesssignature":
			s.sas, s.sasFrom = v, "AZURE_STORAGE_CONNECTION_STRING"
		case "blobendpoint":
			s.blobEndpoint = strings.TrimRight(v, "/")
		case "defaultendpointsprotocol":
			s.protocol, s.protocolSet = strings.ToLower(v), true
		case "endpointsuffix":
			s.domain = v
		case "usedevelopmentstorage":
			if strings.EqualFold(v, "true") {
				s.account = "devstoreaccount1"
				s.key, s.keyFrom = azuriteKey, "AZURE_STORAGE_CONNECTION_STRING"
				s.blobEndpoint = "http://127.0.0.1:10000/devstoreaccount1"
			}
		case "developmentstorageproxyuri", "queueendpoint", "tableendpoint", "fileendpoint", "dfsendpoint":
			// Not the Blob service's, or unsupported: ignored.
		default:
			return fmt.Errorf("AZURE_STORAGE_CONNECTION_STRING: unknown key %q (known: AccountName, AccountKey, SharedAccessSignature, BlobEndpoint, DefaultEndpointsProtocol, EndpointSuffix, UseDevelopmentStorage)", strings.TrimSpace(k))
		}
	}
	return nil
}

// validContainer reports whether name is a valid container name: 3 to 63
// lowercase letters, digits and single hyphens, starting and ending with a
// letter or digit ($root and $web are special containers).
func validContainer(name string) bool {
	if name == "$root" || name == "$web" {
		return true
	}
	if len(name) < 3 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// openAzure opens the container named by an azblob:// URL's host, with q
// the URL's query (prefix removed): domain=, protocol=, localemu=. The
// account, endpoint and credentials come from opts.Getenv; see
// azureCredentialHelp. Open does no network I/O.
func openAzure(_ context.Context, container string, q url.Values, opts Options) (*azureObjects, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if err := queryParams("azblob", q, azureParams...); err != nil {
		return nil, err
	}
	if !validContainer(container) {
		return nil, fmt.Errorf("azblob://%s: not a valid container name (3 to 63 lowercase letters, digits and hyphens)", container)
	}
	var s azureSettings
	if cs := getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		if err := parseConnectionString(cs, &s); err != nil {
			return nil, fmt.Errorf("azblob://%s: %w", container, err)
		}
	}
	// The other variables fill in what a connection string leaves out.
	if s.account == "" {
		s.account = getenv("AZURE_STORAGE_ACCOUNT")
	}
	if s.key == "" && s.sas == "" {
		if k := getenv("AZURE_STORAGE_KEY"); k != "" {
			s.key, s.keyFrom = k, "AZURE_STORAGE_KEY"
		} else if t := getenv("AZURE_STORAGE_SAS_TOKEN"); t != "" {
			s.sas, s.sasFrom = t, "AZURE_STORAGE_SAS_TOKEN"
		}
	}
	if !s.protocolSet {
		if p := getenv("AZURE_STORAGE_PROTOCOL"); p != "" {
			s.protocol, s.protocolSet = strings.ToLower(p), true
		}
	}
	if s.domain == "" {
		s.domain = getenv("AZURE_STORAGE_DOMAIN")
	}
	if v := getenv("AZURE_STORAGE_IS_LOCAL_EMULATOR"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("azblob://%s: AZURE_STORAGE_IS_LOCAL_EMULATOR=%q: want true or false", container, v)
		}
		s.localEmu = b
	}
	// URL parameters win over the environment.
	if v := q.Get("domain"); v != "" {
		s.domain, s.domainFromURL = v, true
	}
	if v := q.Get("protocol"); v != "" {
		s.protocol, s.protocolSet = strings.ToLower(v), true
	}
	if v := q.Get("localemu"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("azblob://%s: localemu=%q: want true or false", container, v)
		}
		s.localEmu = b
	}
	base, err := azureBase(container, &s)
	if err != nil {
		return nil, fmt.Errorf("azblob://%s: %w", container, err)
	}
	client, err := azureClient(opts)
	if err != nil {
		return nil, err
	}
	o := &azureObjects{container: container, base: base, client: client}
	switch {
	case s.key != "":
		o.auth, err = newSharedKey(s.account, s.key, s.keyFrom)
	case s.sas != "":
		o.auth, err = newSAS(s.sas, s.sasFrom)
	default:
		var ad *bearerAuth
		ad, err = newAzureADAuth(getenv, azureTokenClient(opts))
		if ad != nil {
			o.auth = ad
		}
	}
	if err != nil {
		return nil, fmt.Errorf("azblob://%s: %w", container, err)
	}
	if o.auth == nil {
		return nil, fmt.Errorf("azblob://%s: %w: no Azure credentials: %s", container, ErrAuth, azureCredentialHelp)
	}
	if cs := getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		o.secrets = append(o.secrets, cs)
	}
	if strings.HasPrefix(base, "http:") && opts.Log != nil {
		if u, err := url.Parse(base); err == nil && !isLoopback(u.Hostname()) {
			opts.Log.Warn("sending Azure credentials over unencrypted http; use https", "remote", "azblob://"+container)
		}
	}
	return o, nil
}

// azureBase is the container's URL: https://<account>.blob.<domain>/<c>,
// path-style http://<domain>/<account>/<c> for a local emulator, or
// <BlobEndpoint>/<c> from a connection string.
func azureBase(container string, s *azureSettings) (string, error) {
	protocol := s.protocol
	switch protocol {
	case "":
		protocol = "https"
		if s.localEmu {
			protocol = "http"
		}
	case "http", "https":
	default:
		return "", fmt.Errorf("protocol %q: want http or https", s.protocol)
	}
	if s.blobEndpoint != "" && !s.domainFromURL && !s.localEmu {
		eu, err := url.Parse(s.blobEndpoint)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.RawQuery != "" || eu.User != nil {
			return "", errors.New("BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING is not an http(s) URL")
		}
		if s.account == "" {
			// The account, which Shared Key signs, from the host name
			// (<account>.blob...) or the path (an emulator's).
			if p := strings.Trim(eu.Path, "/"); p != "" {
				s.account = p
			} else if h, _, ok := strings.Cut(eu.Hostname(), "."); ok {
				s.account = h
			}
		}
		return s.blobEndpoint + "/" + container, nil
	}
	if s.account == "" {
		return "", fmt.Errorf("no storage account: set AZURE_STORAGE_ACCOUNT (or AZURE_STORAGE_CONNECTION_STRING); %s", azureCredentialHelp)
	}
	if !validAccount(s.account) {
		return "", fmt.Errorf("storage account %q: not a valid account name (3 to 24 lowercase letters and digits)", s.account)
	}
	domain := s.domain
	if s.localEmu {
		if domain == "" {
			domain = "127.0.0.1:10000"
		}
	} else if domain == "" {
		domain = "core.windows.net"
	}
	if strings.ContainsAny(domain, "/?#@ ") {
		return "", fmt.Errorf("domain %q: want a host name (core.windows.net; with localemu, host:port)", domain)
	}
	if s.localEmu {
		return protocol + "://" + domain + "/" + s.account + "/" + container, nil
	}
	return protocol + "://" + s.account + ".blob." + domain + "/" + container, nil
}

// validAccount reports whether name can be a storage account's name.
func validAccount(name string) bool {
	if len(name) < 3 || len(name) > 24 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// azureClient is the HTTP client for the Blob service, on newTransport,
// following no redirect to another host.
func azureClient(opts Options) (*http.Client, error) {
	tr, err := newTransport(opts)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr, CheckRedirect: sameHostRedirect}, nil
}

// azureTokenClient makes token requests: short timeouts, no redirects.
func azureTokenClient(opts Options) *http.Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sameHostRedirect follows a few redirects, never to another host (which
// would get the credentials).
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("refusing a redirect to another host (%s)", req.URL.Host)
	}
	return nil
}

// Secrets lists the credential values in use (the account key, the SAS,
// a client secret, the tokens handed out so far), for the caller to scrub
// from messages.
func (o *azureObjects) Secrets() []string {
	var out []string
	for _, s := range append(o.auth.secrets(), o.secrets...) {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// String names the container.
func (o *azureObjects) String() string { return "azblob://" + o.container }

// Close releases idle connections.
func (o *azureObjects) Close() error {
	o.client.CloseIdleConnections()
	return nil
}

// blobURL is the URL of the blob key: each path segment escaped.
func (o *azureObjects) blobURL(key string, q url.Values) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := o.base + "/" + strings.Join(segs, "/")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// newRequest builds an authorized request for rawURL; body, when not nil,
// has size bytes.
func (o *azureObjects) newRequest(ctx context.Context, method, rawURL string, h http.Header, body io.Reader, size int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			// A zero ContentLength with a non-nil body means "unknown"
			// to net/http.
			req.Body = http.NoBody
			req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		}
	}
	req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-ms-version", azureVersion)
	if err := o.auth.authorize(ctx, req); err != nil {
		return nil, err
	}
	return req, nil
}

// do sends a request built by build; a GET or HEAD answered 429 or 5xx
// is rebuilt (signed anew) and retried twice. Any response is returned;
// an error only when none came, with credentials scrubbed.
func (o *azureObjects) do(ctx context.Context, method, key string, build func() (*http.Request, error)) (*http.Response, error) {
	retries := 0
	if method == http.MethodGet || method == http.MethodHead {
		retries = 2
	}
	var buildErr error
	resp, err := retrying(ctx, retries, azureRetryWait, func() (*http.Response, error) {
		req, err := build()
		if err != nil {
			buildErr = err
			return nil, err
		}
		return o.client.Do(req)
	}, func(resp *http.Response, err error) bool { return err == nil && retryable(resp.StatusCode) })
	switch {
	case err == nil:
		return resp, nil
	case buildErr != nil:
		return nil, o.errorf(method, key, buildErr)
	case ctx.Err() != nil:
		return nil, o.errorf(method, key, ctx.Err())
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // its URL may carry a SAS
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errTruncated
	}
	return nil, &unavailableError{o.errorf(method, key, err)}
}

// errorf wraps err with the container, the operation and the key, with
// credentials scrubbed.
func (o *azureObjects) errorf(method, key string, err error) error {
	return scrub(fmt.Errorf("azblob://%s: %s %s: %w", o.container, method, key, err), o.Secrets())
}

// refused turns a response with an unexpected status into an error: for
// 404 with a blob's absence, errNoObject; else a *StatusError with the
// service's error code and message, and for 401 and 403 where the
// credentials came from.
func (o *azureObjects) refused(resp *http.Response, key string) error {
	code := resp.Header.Get("x-ms-error-code")
	message := code
	if resp.Request.Method != http.MethodHead {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		c, m := parseAzureError(body)
		if c != "" {
			code = c
		}
		switch {
		case c != "" && m != "":
			message = c + ": " + m
		case c != "":
			message = c
		case m != "":
			message = m
		case message == "":
			message = cleanSnippet(body)
		}
	}
	if resp.StatusCode == http.StatusNotFound && code != "ContainerNotFound" {
		drain(resp)
		return fmt.Errorf("azblob://%s: %s: %w", o.container, key, errNoObject)
	}
	if message == "" {
		message = strings.TrimSpace(http.StatusText(resp.StatusCode))
	}
	// Azure's reason phrase repeats the message, which Body carries.
	resp.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	err := responseError(resp, key, sanitizeAzureText(message))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		err = fmt.Errorf("%w (credentials from %s; check that they grant access to the container, or %s)", err, o.auth.source(), azureCredentialHelp)
	case code == "ContainerNotFound":
		err = fmt.Errorf("%w (create the container %s in the storage account)", err, o.container)
	}
	// The *StatusError names the method and the key.
	return scrub(fmt.Errorf("azblob://%s: %w", o.container, err), o.Secrets())
}

// parseAzureError reads the Blob service's XML error body,
// <Error><Code>…</Code><Message>…</Message></Error>, and returns its code
// and the message's first line (the rest is a request id and a time).
// Other elements (AuthenticationErrorDetail quotes the string signed) are
// left out. A body that is not such XML gives "", "".
func parseAzureError(body []byte) (code, message string) {
	var e struct {
		XMLName xml.Name
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if err := xml.Unmarshal(body, &e); err != nil || e.XMLName.Local != "Error" {
		return "", ""
	}
	m, _, _ := strings.Cut(strings.TrimSpace(e.Message), "\n")
	return sanitizeAzureText(e.Code), sanitizeAzureText(m)
}

// sanitizeAzureText makes a server's text printable on one line: control
// characters and runs of white space become one space, invalid UTF-8 '?',
// and it is cut at 300 bytes.
func sanitizeAzureText(s string) string {
	s = strings.ToValidUTF8(s, "?")
	var sb strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) {
			space = true
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		space = false
		sb.WriteRune(r)
		if sb.Len() >= 300 {
			return sb.String() + "…"
		}
	}
	return sb.String()
}

// Stat returns the blob's size (Get Blob Properties).
func (o *azureObjects) Stat(ctx context.Context, key string) (int64, error) {
	resp, err := o.do(ctx, http.MethodHead, key, func() (*http.Request, error) {
		return o.newRequest(ctx, http.MethodHead, o.blobURL(key, nil), nil, nil, 0)
	})
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, o.refused(resp, key)
	}
	drain(resp)
	n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil || n < 0 {
		return 0, o.errorf(http.MethodHead, key, fmt.Errorf("the service sent no valid Content-Length (%q)", resp.Header.Get("Content-Length")))
	}
	return n, nil
}

// Open streams the blob (Get Blob) and returns its size.
func (o *azureObjects) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	resp, err := o.do(ctx, http.MethodGet, key, func() (*http.Request, error) {
		return o.newRequest(ctx, http.MethodGet, o.blobURL(key, nil), nil, nil, 0)
	})
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, o.refused(resp, key)
	}
	size := resp.ContentLength
	if size < 0 {
		n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		if err != nil || n < 0 {
			drain(resp)
			return nil, 0, o.errorf(http.MethodGet, key, errors.New("the service sent no Content-Length"))
		}
		size = n
	}
	return resp.Body, size, nil
}

// Put stores size bytes from r as the block blob key. Up to partSize it
// is one Put Blob request; beyond, Put Block requests of partSize pieces,
// at most partConcurrency in flight, then a Put Block List that commits
// them. The data is read into memory before each request goes out, so a
// reader that fails, or yields fewer or more than size bytes, sends
// nothing that could be committed. Blocks put but never listed are
// invisible (the blob does not exist, or keeps its old content) and the
// service discards them after a week: there is nothing to abort.
func (o *azureObjects) Put(ctx context.Context, key, contentType string, size int64, r io.Reader) error {
	if size < 0 {
		return o.errorf(http.MethodPut, key, fmt.Errorf("negative size %d", size))
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	r = exactly(r, size)
	if size <= int64(partSize) {
		buf, err := readWhole(r, size)
		if err != nil {
			return o.errorf(http.MethodPut, key, fmt.Errorf("upload aborted: %w", err))
		}
		if err := ctx.Err(); err != nil {
			return o.errorf(http.MethodPut, key, err)
		}
		h := http.Header{"Content-Type": {contentType}, "X-Ms-Blob-Type": {"BlockBlob"}}
		return o.send(ctx, http.MethodPut, key, o.blobURL(key, nil), h, buf)
	}
	return o.putBlocks(ctx, key, contentType, size, r)
}

// send makes a request with body, expecting 201 Created.
func (o *azureObjects) send(ctx context.Context, method, key, rawURL string, h http.Header, body []byte) error {
	resp, err := o.do(ctx, method, key, func() (*http.Request, error) {
		return o.newRequest(ctx, method, rawURL, h, bytes.NewReader(body), int64(len(body)))
	})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return o.refused(resp, key)
	}
	drain(resp)
	return nil
}

// azureBlockID is the ID of block i: the same width for every block, as
// the service requires, base64 as it wants. Two uploads of one key at once
// use the same IDs; under cas/ their blocks hold the same bytes, and each
// Put Block List commits whole blocks, so either upload's list gives the
// complete object.
func azureBlockID(i int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("mlbuild-%06d", i)))
}

// putBlocks uploads size bytes of r as blocks and commits them.
func (o *azureObjects) putBlocks(ctx context.Context, key, contentType string, size int64, r io.Reader) error {
	n := int((size + int64(partSize) - 1) / int64(partSize))
	if n > azureMaxBlocks {
		return o.errorf(http.MethodPut, key, fmt.Errorf("%d bytes need %d blocks of %d bytes, over the %d a blob may have", size, n, partSize, azureMaxBlocks))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// partConcurrency buffers, each in use by at most one block upload:
	// the reader waits for one to come back before reading on.
	free := make(chan []byte, max(partConcurrency, 1))
	for range cap(free) {
		free <- nil
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	ids := make([]string, n)
	for i := range n {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		want := int(min(int64(partSize), size-int64(i)*int64(partSize)))
		if cap(buf) < want {
			buf = make([]byte, partSize)
		}
		buf = buf[:want]
		if _, _, err := readPart(r, buf); err != nil {
			fail(o.errorf(http.MethodPut, key, fmt.Errorf("upload aborted: %w", err)))
			break
		}
		ids[i] = azureBlockID(i)
		q := url.Values{"comp": {"block"}, "blockid": {ids[i]}}
		wg.Add(1)
		go func(buf []byte, rawURL string) {
			defer wg.Done()
			if err := o.send(ctx, http.MethodPut, key, rawURL, nil, buf); err != nil {
				fail(err)
			}
			free <- buf
		}(buf, o.blobURL(key, q))
	}
	if ctx.Err() == nil {
		if err := atEnd(r); err != nil {
			fail(o.errorf(http.MethodPut, key, fmt.Errorf("upload aborted: %w", err)))
		}
	}
	wg.Wait()
	mu.Lock()
	err := firstErr
	mu.Unlock()
	if err == nil && ctx.Err() != nil {
		err = o.errorf(http.MethodPut, key, ctx.Err())
	}
	if err != nil {
		// The blocks put are uncommitted: invisible, and discarded by
		// the service.
		return err
	}
	var list bytes.Buffer
	list.WriteString(`<?xml version="1.0" encoding="utf-8"?><BlockList>`)
	for _, id := range ids {
		list.WriteString("<Latest>" + id + "</Latest>")
	}
	list.WriteString("</BlockList>")
	h := http.Header{"Content-Type": {"application/xml; charset=utf-8"}, "X-Ms-Blob-Content-Type": {contentType}}
	return o.send(ctx, http.MethodPut, key, o.blobURL(key, url.Values{"comp": {"blocklist"}}), h, list.Bytes())
}
