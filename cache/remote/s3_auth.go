package remote

// AWS Signature Version 4 and the AWS credential chain, for s3Objects:
// written from AWS's documentation (no SDK is linked, see s3.go).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// awsCreds is one set of AWS credentials; Expires is zero for credentials
// that do not expire.
type awsCreds struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time
}

// emptySHA256 is the hex SHA-256 of no bytes, the payload hash of a
// request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// unsignedPayload is the payload hash S3 accepts in place of the body's.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// sigV4Skip lists the headers a signature leaves out: those a proxy or the
// transport may change on the way.
var sigV4Skip = map[string]bool{
	"authorization": true, "user-agent": true, "content-length": true, "expect": true,
	"connection": true, "transfer-encoding": true, "accept-encoding": true, "x-amzn-trace-id": true,
}

// signV4 signs req (AWS4-HMAC-SHA256, in the Authorization header) for
// service in region at time now. payloadHash is the hex SHA-256 of the
// body, or unsignedPayload. It sets X-Amz-Date, and X-Amz-Security-Token
// when c has a session token; every other header already on req (but those
// in sigV4Skip) and Host are signed. The path is signed as escaped on the
// URL (S3's rule: not escaped twice).
func signV4(req *http.Request, c awsCreds, region, service, payloadHash string, now time.Time) {
	amzDate := now.UTC().Format("20060102T150405Z")
	req.Header.Set("X-Amz-Date", amzDate)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	canonical, signed := canonicalRequest(req, payloadHash)
	scope := amzDate[:8] + "/" + region + "/" + service + "/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := sigV4Key(c.SecretAccessKey, amzDate[:8], region, service)
	sig := hex.EncodeToString(hmacSHA256(key, toSign))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.AccessKeyID+"/"+scope+", SignedHeaders="+signed+", Signature="+sig)
}

// sigV4Key derives the signing key of a day, region and service.
func sigV4Key(secret, day, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest is SigV4's canonical form of req, and the list of the
// headers it signs.
func canonicalRequest(req *http.Request, payloadHash string) (string, string) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := map[string][]string{"host": {host}}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if sigV4Skip[lk] {
			continue
		}
		for _, v := range vs {
			headers[lk] = append(headers[lk], strings.Join(strings.Fields(v), " "))
		}
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, k := range names {
		ch.WriteString(k + ":" + strings.Join(headers[k], ",") + "\n")
	}
	signed := strings.Join(names, ";")
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	return strings.Join([]string{req.Method, path, canonicalQuery(req.URL.RawQuery), ch.String(), signed, payloadHash}, "\n"), signed
}

// canonicalQuery sorts a query's parameters and escapes them as SigV4
// wants (RFC 3986: only unreserved characters kept; "a" becomes "a=").
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var pairs []string
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		pairs = append(pairs, awsEscape(k, false)+"="+awsEscape(v, false))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// awsEscape percent-encodes every byte of s but the unreserved characters
// (A-Z a-z 0-9 - _ . ~), and '/' too unless keepSlash: the encoding of S3
// object keys in paths and of SigV4's canonical query.
func awsEscape(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// credSource fetches credentials (from a file, a process, a server).
type credSource func(ctx context.Context) (awsCreds, error)

// credRefresh is how long before their expiry temporary credentials are
// fetched again.
const credRefresh = 5 * time.Minute

// credCache holds the credentials of a source, fetching them on first use
// and again credRefresh before they expire. Safe for concurrent use:
// concurrent callers wait for one fetch.
type credCache struct {
	src     credSource
	now     func() time.Time
	mu      sync.Mutex
	cur     awsCreds
	have    bool
	secrets []string // every secret fetched so far, for scrubbing
}

// newCredCache caches src.
func newCredCache(src credSource) *credCache {
	return &credCache{src: src, now: time.Now}
}

// get returns valid credentials, fetching them when there are none or they
// expire within credRefresh.
func (c *credCache) get(ctx context.Context) (awsCreds, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have && (c.cur.Expires.IsZero() || c.now().Add(credRefresh).Before(c.cur.Expires)) {
		return c.cur, nil
	}
	cr, err := c.src(ctx)
	if err != nil {
		return awsCreds{}, err
	}
	if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
		return awsCreds{}, fmt.Errorf("%w: the credential source returned no access key", ErrAuth)
	}
	c.cur, c.have = cr, true
	c.secrets = appendSecrets(c.secrets, cr.SecretAccessKey, cr.SessionToken)
	return cr, nil
}

// knownSecrets returns the secrets fetched so far.
func (c *credCache) knownSecrets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.secrets...)
}

// appendSecrets adds the non-empty values not yet in list.
func appendSecrets(list []string, vs ...string) []string {
	for _, v := range vs {
		if v != "" && !contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// staticCreds is a source of fixed credentials.
func staticCreds(c awsCreds) credSource {
	return func(context.Context) (awsCreds, error) { return c, nil }
}

// awsEnv is what the credential chain reads: the environment (through
// Options.Getenv), the shared config and credentials files, and the
// clients for the credential services.
type awsEnv struct {
	getenv  func(string) string
	profile string // the profile in use
	// explicit: the profile was named (profile= or AWS_PROFILE), so it
	// must exist.
	explicit bool
	// byParam: named by profile=, which puts it before the environment's
	// keys (as the SDK does for a profile given in code).
	byParam bool
	files   []string                     // the config and credentials files that exist
	config  map[string]map[string]string // profile name -> settings, both files merged
	region  string                       // resolved region
	client  *http.Client                 // STS
	local   *http.Client                 // container credentials and IMDS: link-local, no proxy
	mu      sync.Mutex                   // guards secrets
	secrets []string                     // tokens read for credential requests
}

// addSecret records a token read for a credential request, for scrubbing.
func (e *awsEnv) addSecret(v string) {
	e.mu.Lock()
	e.secrets = appendSecrets(e.secrets, v)
	e.mu.Unlock()
}

// knownSecrets returns the tokens read so far.
func (e *awsEnv) knownSecrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.secrets...)
}

// loadAWSEnv reads the shared config and credentials files for the
// profile (profile= when not empty, else AWS_PROFILE, else "default").
func loadAWSEnv(getenv func(string) string, profileParam string) (*awsEnv, error) {
	e := &awsEnv{getenv: getenv, config: map[string]map[string]string{}}
	e.profile, e.explicit, e.byParam = profileParam, profileParam != "", profileParam != ""
	if e.profile == "" {
		e.profile = getenv("AWS_PROFILE")
		e.explicit = e.profile != ""
	}
	if e.profile == "" {
		e.profile = "default"
	}
	home, _ := os.UserHomeDir()
	configFile, credsFile := getenv("AWS_CONFIG_FILE"), getenv("AWS_SHARED_CREDENTIALS_FILE")
	if configFile == "" && home != "" {
		configFile = filepath.Join(home, ".aws", "config")
	}
	if credsFile == "" && home != "" {
		credsFile = filepath.Join(home, ".aws", "credentials")
	}
	// The credentials file's settings win over the config file's.
	for _, f := range []struct {
		path   string
		config bool
	}{{configFile, true}, {credsFile, false}} {
		if f.path == "" {
			continue
		}
		sections, err := readINI(f.path, f.config)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("AWS shared config: %w", err)
		}
		e.files = append(e.files, f.path)
		for name, kv := range sections {
			if e.config[name] == nil {
				e.config[name] = map[string]string{}
			}
			for k, v := range kv {
				e.config[name][k] = v
			}
		}
	}
	if e.explicit && e.config[e.profile] == nil {
		return nil, fmt.Errorf("AWS profile %q is in none of the shared config files (%s)", e.profile, strings.Join(e.filesTried(configFile, credsFile), ", "))
	}
	return e, nil
}

// filesTried names the files looked at, for messages.
func (e *awsEnv) filesTried(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []string{"no home directory"}
	}
	return out
}

// readINI parses an AWS shared config (config: sections "[profile NAME]"
// and "[default]"; other kinds, such as "[sso-session X]", are skipped) or
// credentials file (sections "[NAME]"). Indented lines (a setting's
// sub-settings) and comments are skipped.
func readINI(path string, config bool) (map[string]map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			cur = nil
			name, ok := strings.CutSuffix(line[1:], "]")
			if !ok {
				continue
			}
			name = strings.TrimSpace(name)
			if config && name != "default" {
				p, ok := strings.CutPrefix(name, "profile ")
				if !ok {
					continue
				}
				name = strings.TrimSpace(p)
			}
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			cur = out[name]
			continue
		}
		if cur == nil || raw[0] == ' ' || raw[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		cur[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}

// credentialChain picks the source of credentials the AWS SDK's default
// chain would, without any I/O but reading files: a profile named by
// profile=; the environment's keys; web identity (AWS_WEB_IDENTITY_TOKEN_FILE
// with AWS_ROLE_ARN); the profile (AWS_PROFILE or "default"): its role,
// keys, credential_process or web identity token file; container
// credentials (ECS, EKS pod identity); the EC2 instance metadata service,
// unless allowIMDS is false. It returns a nil source when nothing provides
// credentials (and IMDS is not allowed), and what the source is, for
// messages.
func (e *awsEnv) credentialChain(allowIMDS bool) (credSource, string, error) {
	if e.byParam {
		return e.profileSource(e.profile, allowIMDS, 0)
	}
	id, secret := e.getenv("AWS_ACCESS_KEY_ID"), e.getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case id != "" && secret != "":
		return staticCreds(awsCreds{AccessKeyID: id, SecretAccessKey: secret, SessionToken: e.getenv("AWS_SESSION_TOKEN")}), "AWS_ACCESS_KEY_ID", nil
	case id != "" || secret != "":
		return nil, "", fmt.Errorf("%w: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together", ErrAuth)
	}
	if tok := e.getenv("AWS_WEB_IDENTITY_TOKEN_FILE"); tok != "" {
		arn := e.getenv("AWS_ROLE_ARN")
		if arn == "" {
			return nil, "", fmt.Errorf("%w: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not", ErrAuth)
		}
		return e.webIdentity(tok, arn, e.getenv("AWS_ROLE_SESSION_NAME")), "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)", nil
	}
	return e.profileSource(e.profile, allowIMDS, 0)
}

// profileSource is the credential source of a profile, falling back (when
// the profile provides none) to container credentials and then IMDS.
func (e *awsEnv) profileSource(name string, allowIMDS bool, depth int) (credSource, string, error) {
	if depth > 4 {
		return nil, "", fmt.Errorf("AWS profile %q: source_profile chain too long (a loop?)", name)
	}
	p := e.config[name]
	what := fmt.Sprintf("profile %q", name)
	switch {
	case p["role_arn"] != "":
		return e.roleSource(name, p, allowIMDS, depth)
	case p["aws_access_key_id"] != "" && p["aws_secret_access_key"] != "":
		return staticCreds(awsCreds{AccessKeyID: p["aws_access_key_id"], SecretAccessKey: p["aws_secret_access_key"], SessionToken: p["aws_session_token"]}), what, nil
	case p["aws_access_key_id"] != "" || p["aws_secret_access_key"] != "":
		return nil, "", fmt.Errorf("%w: AWS profile %q has only one of aws_access_key_id and aws_secret_access_key", ErrAuth, name)
	case p["sso_start_url"] != "" || p["sso_session"] != "":
		return nil, "", fmt.Errorf("%w: AWS profile %q uses IAM Identity Center (SSO), which mlbuild does not speak: run `aws configure export-credentials --profile %s --format env` and export the variables it prints", ErrAuth, name, name)
	case p["credential_process"] != "":
		return processCreds(p["credential_process"]), what + " (credential_process)", nil
	case p["web_identity_token_file"] != "":
		return nil, "", fmt.Errorf("AWS profile %q: web_identity_token_file needs role_arn", name)
	}
	return e.machineSource(allowIMDS)
}

// machineSource is the container's credentials, else the EC2 instance's
// (when allowed), else none.
func (e *awsEnv) machineSource(allowIMDS bool) (credSource, string, error) {
	if src, err := e.containerSource(); src != nil || err != nil {
		return src, "container credentials", err
	}
	if allowIMDS && !strings.EqualFold(e.getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		return e.imdsCreds(), "the EC2 instance metadata service", nil
	}
	return nil, "", nil
}

// roleSource assumes a profile's role_arn: with web_identity_token_file,
// through AssumeRoleWithWebIdentity; else with the credentials of
// source_profile or credential_source (Environment, Ec2InstanceMetadata,
// EcsContainer), through AssumeRole.
func (e *awsEnv) roleSource(name string, p map[string]string, allowIMDS bool, depth int) (credSource, string, error) {
	arn := p["role_arn"]
	if tok := p["web_identity_token_file"]; tok != "" {
		return e.webIdentity(tok, arn, p["role_session_name"]), fmt.Sprintf("profile %q (web identity)", name), nil
	}
	var base credSource
	var err error
	switch src := p["credential_source"]; {
	case p["source_profile"] != "":
		sp := p["source_profile"]
		if e.config[sp] == nil {
			return nil, "", fmt.Errorf("AWS profile %q: source_profile %q is in no shared config file", name, sp)
		}
		if sp == name {
			// A profile may hold the keys its own role is assumed with.
			q := e.config[sp]
			if q["aws_access_key_id"] == "" || q["aws_secret_access_key"] == "" {
				return nil, "", fmt.Errorf("AWS profile %q is its own source_profile but has no keys", name)
			}
			base = staticCreds(awsCreds{AccessKeyID: q["aws_access_key_id"], SecretAccessKey: q["aws_secret_access_key"], SessionToken: q["aws_session_token"]})
		} else {
			base, _, err = e.profileSource(sp, allowIMDS, depth+1)
		}
	case strings.EqualFold(src, "Environment"):
		id, secret := e.getenv("AWS_ACCESS_KEY_ID"), e.getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			return nil, "", fmt.Errorf("%w: AWS profile %q: credential_source = Environment, but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set", ErrAuth, name)
		}
		base = staticCreds(awsCreds{AccessKeyID: id, SecretAccessKey: secret, SessionToken: e.getenv("AWS_SESSION_TOKEN")})
	case strings.EqualFold(src, "EcsContainer"):
		base, err = e.containerSource()
	case strings.EqualFold(src, "Ec2InstanceMetadata"):
		base = e.imdsCreds()
	default:
		return nil, "", fmt.Errorf("AWS profile %q: role_arn needs source_profile or credential_source (Environment, Ec2InstanceMetadata or EcsContainer)", name)
	}
	if err != nil {
		return nil, "", err
	}
	if base == nil {
		return nil, "", fmt.Errorf("%w: AWS profile %q: no credentials to assume role_arn with", ErrAuth, name)
	}
	session := p["role_session_name"]
	if session == "" {
		session = fmt.Sprintf("mlbuild-%d", time.Now().UnixNano())
	}
	q := url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {arn}, "RoleSessionName": {session}}
	if x := p["external_id"]; x != "" {
		q.Set("ExternalId", x)
	}
	if d := p["duration_seconds"]; d != "" {
		q.Set("DurationSeconds", d)
	}
	baseCache := newCredCache(base)
	return func(ctx context.Context) (awsCreds, error) {
		bc, err := baseCache.get(ctx)
		if err != nil {
			return awsCreds{}, err
		}
		return e.sts(ctx, "AssumeRole", q, &bc)
	}, fmt.Sprintf("profile %q (role_arn)", name), nil
}

// webIdentity exchanges the token in tokenFile for the role's credentials
// (STS AssumeRoleWithWebIdentity, an unsigned request), reading the file
// at each fetch (the token rotates).
func (e *awsEnv) webIdentity(tokenFile, arn, session string) credSource {
	return func(ctx context.Context) (awsCreds, error) {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return awsCreds{}, fmt.Errorf("%w: web identity token: %v", ErrAuth, err)
		}
		t := strings.TrimSpace(string(tok))
		e.addSecret(t)
		s := session
		if s == "" {
			s = fmt.Sprintf("mlbuild-%d", time.Now().UnixNano())
		}
		q := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {arn}, "RoleSessionName": {s}, "WebIdentityToken": {t}}
		return e.sts(ctx, "AssumeRoleWithWebIdentity", q, nil)
	}
}

// stsEndpoint is the STS endpoint of the region, or AWS_ENDPOINT_URL_STS.
func (e *awsEnv) stsEndpoint() string {
	if u := e.getenv("AWS_ENDPOINT_URL_STS"); u != "" {
		return strings.TrimRight(u, "/")
	}
	suffix := "amazonaws.com"
	if strings.HasPrefix(e.region, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	return "https://sts." + e.region + "." + suffix
}

// sts calls an STS action that returns credentials (a form POST, signed
// with signer when not nil) and parses the XML answer.
func (e *awsEnv) sts(ctx context.Context, action string, form url.Values, signer *awsCreds) (awsCreds, error) {
	body := form.Encode()
	endpoint := e.stsEndpoint()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		return awsCreds{}, fmt.Errorf("STS %s: endpoint %s: %w", action, endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Accept", "application/xml")
	if signer != nil {
		sum := sha256.Sum256([]byte(body))
		signV4(req, *signer, e.region, "sts", hex.EncodeToString(sum[:]), time.Now())
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return awsCreds{}, fmt.Errorf("STS %s at %s: %w", action, endpoint, unwrapURLError(err))
	}
	defer drain(resp)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return awsCreds{}, fmt.Errorf("STS %s at %s: %w", action, endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		if code, m, ok := parseS3Error(data); ok {
			msg += ": " + code + ": " + m
		}
		err := fmt.Errorf("STS %s at %s: %s", action, endpoint, msg)
		if resp.StatusCode < 500 && resp.StatusCode != 429 {
			err = fmt.Errorf("%w: %v", ErrAuth, err)
		}
		return awsCreds{}, err
	}
	c, err := parseSTSCredentials(data)
	if err != nil {
		return awsCreds{}, fmt.Errorf("STS %s at %s: %w", action, endpoint, err)
	}
	return c, nil
}

// parseSTSCredentials reads the <Credentials> of an STS action's answer.
func parseSTSCredentials(data []byte) (awsCreds, error) {
	var x struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	if !decodeElement(data, "Credentials", &x) {
		return awsCreds{}, errors.New("the answer holds no credentials")
	}
	c := awsCreds{AccessKeyID: strings.TrimSpace(x.AccessKeyID), SecretAccessKey: strings.TrimSpace(x.SecretAccessKey), SessionToken: strings.TrimSpace(x.SessionToken)}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return awsCreds{}, errors.New("the answer holds no credentials")
	}
	if e := strings.TrimSpace(x.Expiration); e != "" {
		t, err := time.Parse(time.RFC3339, e)
		if err != nil {
			return awsCreds{}, fmt.Errorf("expiration %q: %v", e, err)
		}
		c.Expires = t
	}
	return c, nil
}

// jsonCreds is the JSON of credential_process (Version 1), the container
// credentials endpoint and IMDS.
type jsonCreds struct {
	Version         int
	Code            string
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Token           string
	Expiration      string
}

// creds checks and converts the JSON's credentials.
func (j *jsonCreds) creds() (awsCreds, error) {
	c := awsCreds{AccessKeyID: j.AccessKeyID, SecretAccessKey: j.SecretAccessKey, SessionToken: j.SessionToken}
	if c.SessionToken == "" {
		c.SessionToken = j.Token
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return awsCreds{}, errors.New("no AccessKeyId or SecretAccessKey in the answer")
	}
	if j.Expiration != "" {
		t, err := time.Parse(time.RFC3339, j.Expiration)
		if err != nil {
			return awsCreds{}, fmt.Errorf("expiration %q: %v", j.Expiration, err)
		}
		c.Expires = t
	}
	return c, nil
}

// processCreds runs a profile's credential_process (through sh -c) and
// reads its JSON (Version 1).
func processCreds(command string) credSource {
	return func(ctx context.Context) (awsCreds, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
			return awsCreds{}, fmt.Errorf("%w: credential_process failed: %v (%s)", ErrAuth, err, scrubText(msg, nil))
		}
		var j jsonCreds
		if err := json.Unmarshal(out, &j); err != nil {
			return awsCreds{}, fmt.Errorf("%w: credential_process printed no JSON credentials: %v", ErrAuth, err)
		}
		if j.Version != 1 {
			return awsCreds{}, fmt.Errorf("%w: credential_process printed Version %d; want 1", ErrAuth, j.Version)
		}
		c, err := j.creds()
		if err != nil {
			return awsCreds{}, fmt.Errorf("%w: credential_process: %v", ErrAuth, err)
		}
		return c, nil
	}
}

// containerSource is the ECS (or EKS pod identity) credentials endpoint:
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI under http://169.254.170.2, or
// AWS_CONTAINER_CREDENTIALS_FULL_URI (plain http only to a loopback or
// the container hosts), with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE). Nil
// when neither variable is set.
func (e *awsEnv) containerSource() (credSource, error) {
	endpoint := ""
	if rel := e.getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		endpoint = "http://169.254.170.2" + rel
	} else if full := e.getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"); full != "" {
		u, err := url.Parse(full)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI: not an http(s) URL")
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) && !containerHost(u.Hostname()) {
			return nil, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http only to a loopback address or the container credentials host, not %s", u.Hostname())
		}
		endpoint = full
	} else {
		return nil, nil
	}
	return func(ctx context.Context) (awsCreds, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return awsCreds{}, fmt.Errorf("container credentials: %w", err)
		}
		tok := e.getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
		if f := e.getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return awsCreds{}, fmt.Errorf("%w: container credentials: %v", ErrAuth, err)
			}
			tok = strings.TrimSpace(string(b))
		}
		if tok != "" {
			e.addSecret(tok)
			req.Header.Set("Authorization", tok)
		}
		var j jsonCreds
		if err := getJSON(e.local, req, &j); err != nil {
			return awsCreds{}, fmt.Errorf("container credentials: %w", err)
		}
		c, err := j.creds()
		if err != nil {
			return awsCreds{}, fmt.Errorf("%w: container credentials: %v", ErrAuth, err)
		}
		return c, nil
	}, nil
}

// containerHost reports whether host is one of the link-local addresses of
// ECS and EKS pod identity.
func containerHost(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.ParseIP("169.254.170.2")) || ip.Equal(net.ParseIP("169.254.170.23")) || ip.Equal(net.ParseIP("fd00:ec2::23")))
}

// getJSON sends req and decodes a 200 answer's JSON into v.
func getJSON(c *http.Client, req *http.Request, v any) error {
	resp, err := c.Do(req)
	if err != nil {
		return unwrapURLError(err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		err := fmt.Errorf("%s: %s", resp.Status, cleanSnippet(snippet))
		if resp.StatusCode < 500 {
			err = fmt.Errorf("%w: %v", ErrAuth, err)
		}
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("unreadable answer: %v", err)
	}
	return nil
}

// imdsTimeout bounds each request to the instance metadata service: off
// EC2 nothing answers, and the chain must give up quickly.
const imdsTimeout = 2 * time.Second

// imdsCreds fetches the instance role's credentials from IMDSv2 (a token
// first, by PUT; then the role's name and its credentials), at
// AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254.
func (e *awsEnv) imdsCreds() credSource {
	base := strings.TrimRight(e.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"), "/")
	if base == "" {
		base = "http://169.254.169.254"
	}
	return func(ctx context.Context) (awsCreds, error) {
		fail := func(err error) (awsCreds, error) {
			return awsCreds{}, fmt.Errorf("%w: no AWS credentials found (%s; the EC2 instance metadata service at %s: %v)", ErrAuth, credentialHelp("s3"), base, err)
		}
		tok, err := e.imdsGet(ctx, http.MethodPut, base+"/latest/api/token", "")
		if err != nil {
			return fail(fmt.Errorf("token: %w", err))
		}
		e.addSecret(tok)
		role, err := e.imdsGet(ctx, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/", tok)
		if err != nil {
			return fail(fmt.Errorf("role: %w", err))
		}
		role, _, _ = strings.Cut(strings.TrimSpace(role), "\n")
		if role == "" {
			return fail(errors.New("the instance has no IAM role"))
		}
		body, err := e.imdsGet(ctx, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/"+url.PathEscape(role), tok)
		if err != nil {
			return fail(fmt.Errorf("credentials: %w", err))
		}
		var j jsonCreds
		if err := json.Unmarshal([]byte(body), &j); err != nil {
			return fail(fmt.Errorf("unreadable credentials: %v", err))
		}
		if j.Code != "" && j.Code != "Success" {
			return fail(fmt.Errorf("credentials: code %q", j.Code))
		}
		c, err := j.creds()
		if err != nil {
			return fail(err)
		}
		return c, nil
	}
}

// imdsGet sends one IMDSv2 request (a PUT asks for a session token) and
// returns the body of its 200 answer.
func (e *awsEnv) imdsGet(ctx context.Context, method, u, token string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, imdsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return "", err
	}
	if token == "" {
		req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
	} else {
		req.Header.Set("X-Aws-Ec2-Metadata-Token", token)
	}
	resp, err := e.local.Do(req)
	if err != nil {
		return "", unwrapURLError(err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(b), err
}

// unwrapURLError drops net/http's *url.Error, whose message quotes the URL
// (which, for STS, could hold a token).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseS3Error reads the <Code> and <Message> of an S3 or STS error body
// (<Error>, possibly inside <ErrorResponse>); ok is false when body holds
// no <Error> element.
func parseS3Error(body []byte) (code, message string, ok bool) {
	var e struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if !decodeElement(body, "Error", &e) {
		return "", "", false
	}
	return strings.TrimSpace(e.Code), strings.TrimSpace(e.Message), true
}

// decodeElement decodes into v the first element named name among the
// first few hundred tokens of data; false if there is none or it does not
// decode.
func decodeElement(data []byte, name string, v any) bool {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	for range 256 {
		t, err := d.Token()
		if err != nil {
			return false
		}
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == name {
			return d.DecodeElement(v, &se) == nil
		}
	}
	return false
}
