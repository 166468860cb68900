package remote

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// Google's Application Default Credentials, found as Google's libraries
// find them but with golang.org/x/oauth2 alone (golang.org/x/oauth2/google
// links Google's whole auth library, whose initialisers would run at every
// mlbuild start):
//
//  1. the JSON file GOOGLE_APPLICATION_CREDENTIALS names;
//  2. gcloud's application-default login
//     ($CLOUDSDK_CONFIG or ~/.config/gcloud, application_default_credentials.json);
//  3. the metadata server, on Google Cloud (GCE_METADATA_HOST set, or the
//     machine's DMI product name says Google).
//
// A file holds a service account's key ("service_account": a signed JWT
// exchanged for a token) or a user's refresh token ("authorized_user",
// from gcloud). Workload identity federation ("external_account") and
// impersonation files are not supported: the error says what to use.

// gcsScope is the OAuth scope for reading and writing objects.
const gcsScope = "https://www.googleapis.com/auth/devstorage.read_write"

// googleTokenURL is Google's OAuth 2.0 token endpoint (a variable for
// tests).
var googleTokenURL = "https://oauth2.googleapis.com/token"

// credentialsHelp says how to give Google credentials.
const credentialsHelp = "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, run `gcloud auth application-default login`, or add ?anonymous=true for a public bucket"

// googleCredentials finds the credentials and returns a token source that
// caches and refreshes tokens, with the credentials' secret values.
func googleCredentials(ctx context.Context, opts Options) (oauth2.TokenSource, []string, error) {
	ctx = context.WithoutCancel(ctx) // the token source outlives Open's context
	file := opts.Getenv("GOOGLE_APPLICATION_CREDENTIALS")
	explicit := file != ""
	if !explicit {
		dir := opts.Getenv("CLOUDSDK_CONFIG")
		if dir == "" {
			if home, err := os.UserHomeDir(); err == nil {
				dir = filepath.Join(home, ".config", "gcloud")
			}
		}
		if dir != "" {
			if f := filepath.Join(dir, "application_default_credentials.json"); fileExists(f) {
				file = f
			}
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("read the Google credentials: %w (%s)", err, credentialsHelp)
		}
		ts, secrets, err := googleFileCredentials(ctx, data)
		if err != nil {
			return nil, nil, fmt.Errorf("the Google credentials in %s: %w", file, err)
		}
		return oauth2.ReuseTokenSource(nil, ts), secrets, nil
	}
	if host := metadataHost(opts); host != "" {
		return oauth2.ReuseTokenSource(nil, &metadataTokens{ctx: ctx, base: "http://" + host}), nil, nil
	}
	return nil, nil, fmt.Errorf("no Google credentials found (%s)", credentialsHelp)
}

// googleCredentialsFile is the part of a credentials file mlbuild reads.
type googleCredentialsFile struct {
	Type string `json:"type"`
	// service_account
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
	// authorized_user
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RefreshToken string `json:"refresh_token"`
}

// googleFileCredentials is the token source of a credentials file's JSON.
func googleFileCredentials(ctx context.Context, data []byte) (oauth2.TokenSource, []string, error) {
	var f googleCredentialsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("not a credentials file: %v", err)
	}
	switch f.Type {
	case "service_account":
		if f.ClientEmail == "" || f.PrivateKey == "" {
			return nil, nil, errors.New("a service_account file needs client_email and private_key")
		}
		tokenURL := f.TokenURI
		if tokenURL == "" {
			tokenURL = googleTokenURL
		}
		cfg := &jwt.Config{Email: f.ClientEmail, PrivateKey: []byte(f.PrivateKey), PrivateKeyID: f.PrivateKeyID, Scopes: []string{gcsScope}, TokenURL: tokenURL}
		if err := checkPrivateKey(f.PrivateKey); err != nil {
			return nil, nil, fmt.Errorf("service account %s: private_key: %v", f.ClientEmail, err)
		}
		return cfg.TokenSource(ctx), []string{f.PrivateKey}, nil
	case "authorized_user":
		if f.ClientID == "" || f.RefreshToken == "" {
			return nil, nil, errors.New("an authorized_user file needs client_id and refresh_token")
		}
		cfg := &oauth2.Config{ClientID: f.ClientID, ClientSecret: f.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: googleTokenURL, AuthStyle: oauth2.AuthStyleInParams}, Scopes: []string{gcsScope}}
		secrets := []string{f.RefreshToken}
		if f.ClientSecret != "" {
			secrets = append(secrets, f.ClientSecret)
		}
		return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: f.RefreshToken}), secrets, nil
	case "":
		return nil, nil, errors.New(`no "type" field: not a Google credentials file`)
	}
	return nil, nil, fmt.Errorf("credentials of type %q are not supported by mlbuild (use a service account key file, or `gcloud auth application-default login`; for workload identity federation, run mlbuild where a service account key or the metadata server is available)", f.Type)
}

// checkPrivateKey parses a service account's PEM key (PKCS #8 or #1 RSA),
// so that a bad key fails at Open instead of at the first request.
func checkPrivateKey(key string) error {
	block, _ := pem.Decode([]byte(key))
	if block == nil {
		return errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return errors.New("not an RSA key")
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		return errors.New("not a PKCS #8 or PKCS #1 RSA key")
	}
	return nil
}

// metadataHost is the metadata server's host on Google Cloud, "" elsewhere
// (no network probe: the DMI product name says where we run).
func metadataHost(opts Options) string {
	if h := opts.Getenv("GCE_METADATA_HOST"); h != "" {
		return h
	}
	b, err := os.ReadFile(dmiProductName)
	if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "Google") {
		return "metadata.google.internal"
	}
	return ""
}

// dmiProductName is the file naming the machine's product ("Google
// Compute Engine" on Google Cloud); a variable for tests.
var dmiProductName = "/sys/class/dmi/id/product_name"

// metadataTokens gets the default service account's tokens from the
// metadata server.
type metadataTokens struct {
	ctx  context.Context
	base string
}

func (m *metadataTokens) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	u := m.base + "/computeMetadata/v1/instance/service-accounts/default/token?scopes=" + url.QueryEscape(gcsScope)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metadata server: %w", err)
	}
	defer drain(resp)
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("metadata server: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metadata server: %s: %s (does the VM have a service account with the storage scope?)", resp.Status, cleanSnippet(body))
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return nil, errors.New("metadata server: no access token in its answer")
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: time.Now().Add(time.Duration(t.ExpiresIn) * time.Second)}, nil
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
