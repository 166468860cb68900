package remote

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeTokenServer is Google's token endpoint and metadata server: it
// checks each grant and answers a token naming it.
func fakeTokenServer(t *testing.T, key *rsa.PrivateKey) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		token := ""
		switch {
		case r.URL.Path == "/token" && r.FormValue("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
			// A JWT signed with the service account's key, for the scope.
			parts := strings.Split(r.FormValue("assertion"), ".")
			if len(parts) != 3 {
				http.Error(w, "bad assertion", 400)
				return
			}
			claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var c struct{ Iss, Scope, Aud string }
			if json.Unmarshal(claims, &c) != nil || c.Iss != "sa@proj.iam.gserviceaccount.com" || c.Scope != gcsScope {
				http.Error(w, "bad claims "+string(claims), 400)
				return
			}
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			if err := verifyRS256(&key.PublicKey, parts[0]+"."+parts[1], sig); err != nil {
				http.Error(w, "bad signature", 400)
				return
			}
			token = "sa-token"
		case r.URL.Path == "/token" && r.FormValue("grant_type") == "refresh_token":
			if r.FormValue("refresh_token") != "refresh-s3cret" || r.FormValue("client_id") != "cid" {
				http.Error(w, "bad refresh", 400)
				return
			}
			token = "user-token"
		case strings.HasPrefix(r.URL.Path, "/computeMetadata/v1/instance/service-accounts/default/token"):
			if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Query().Get("scopes") != gcsScope {
				http.Error(w, "no flavor", http.StatusForbidden)
				return
			}
			token = "vm-token"
		default:
			http.Error(w, "unexpected "+r.URL.String(), 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// Each kind of Application Default Credentials gives a token, fetched once
// and reused; a bad file fails at Open with the file's name and no secret.
func TestGoogleCredentials(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))}))
	srv, calls := fakeTokenServer(t, key)
	old := googleTokenURL
	googleTokenURL = srv.URL + "/token"
	t.Cleanup(func() { googleTokenURL = old })
	dir := t.TempDir()
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		b, _ := json.Marshal(v)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sa := write("sa.json", map[string]string{"type": "service_account", "client_email": "sa@proj.iam.gserviceaccount.com", "private_key": pemKey, "private_key_id": "k1", "token_uri": srv.URL + "/token"})
	user := write("adc.json", map[string]string{"type": "authorized_user", "client_id": "cid", "client_secret": "csecret", "refresh_token": "refresh-s3cret"})
	external := write("ext.json", map[string]string{"type": "external_account"})
	badKey := write("bad.json", map[string]string{"type": "service_account", "client_email": "sa@x", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"})
	t.Setenv("HOME", t.TempDir())
	oldDMI := dmiProductName
	dmiProductName = filepath.Join(dir, "not-on-google-cloud")
	t.Cleanup(func() { dmiProductName = oldDMI })

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"service account key", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": sa}, "sa-token"},
		{"gcloud login", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": user}, "user-token"},
		{"metadata server", map[string]string{"GCE_METADATA_HOST": strings.TrimPrefix(srv.URL, "http://")}, "vm-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			ts, _, err := googleCredentials(context.Background(), Options{Getenv: envMap(tc.env)})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				tok, err := ts.Token()
				if err != nil || tok.AccessToken != tc.want {
					t.Fatalf("token %v, %v; want %s", tok, err, tc.want)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d token requests for 3 uses; want 1 (cached)", n)
			}
		})
	}
	// gcloud's application-default login is found in its folder.
	t.Run("gcloud folder", func(t *testing.T) {
		cfg := t.TempDir()
		data, _ := os.ReadFile(user)
		if err := os.WriteFile(filepath.Join(cfg, "application_default_credentials.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		ts, secrets, err := googleCredentials(context.Background(), Options{Getenv: envMap(map[string]string{"CLOUDSDK_CONFIG": cfg})})
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := ts.Token(); err != nil || tok.AccessToken != "user-token" {
			t.Fatalf("token %v, %v", tok, err)
		}
		if !strings.Contains(strings.Join(secrets, " "), "refresh-s3cret") {
			t.Errorf("the refresh token is not among the secrets to scrub")
		}
	})
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unsupported type", external, `"external_account" are not supported`},
		{"bad key", badKey, "private_key"},
		{"missing file", filepath.Join(dir, "none.json"), "none.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), "gs://b", Options{Getenv: envMap(map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": tc.file})})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want an error mentioning %q", err, tc.want)
			}
		})
	}
	// No credentials anywhere: Open says how to give them.
	_, err = Open(context.Background(), "gs://b", Options{Getenv: envMap(nil)})
	if err == nil || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") || !strings.Contains(err.Error(), "anonymous=true") {
		t.Errorf("Open without credentials: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// verifyRS256 checks a JWT's RS256 signature.
func verifyRS256(pub *rsa.PublicKey, signed string, sig []byte) error {
	h := sha256.Sum256([]byte(signed))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
}
