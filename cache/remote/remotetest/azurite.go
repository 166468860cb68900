package remotetest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// AzuriteVersion is the version of Azurite (Microsoft's Azure Storage
// emulator, from npm) that .ci/run installs, under AzuriteDir.
const AzuriteVersion = "3.35.0"

// EnvAzurite names the azurite-blob executable to use, overriding the
// places AzuriteBinary looks.
const EnvAzurite = "MLBUILD_AZURITE"

// AzuriteAccount and AzuriteKey are the emulator's well-known account and
// key (documented by Microsoft, not a secret).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteDir is where .ci/run installs Azurite: ~/.cache/mlbuild/azurite-<version>
// (its azurite-blob at node_modules/.bin/azurite-blob).
func AzuriteDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "mlbuild", "azurite-"+AzuriteVersion)
}

// AzuriteBinary is the path of azurite-blob: $MLBUILD_AZURITE, then
// AzuriteDir's, then one on PATH; "" when none is installed (or node,
// which runs it, is missing).
func AzuriteBinary() string {
	if _, err := exec.LookPath("node"); err != nil {
		return ""
	}
	if p := os.Getenv(EnvAzurite); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		return ""
	}
	if d := AzuriteDir(); d != "" {
		p := filepath.Join(d, "node_modules", ".bin", "azurite-blob")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p
	}
	return ""
}

// azuriteHelp says how to install Azurite.
var azuriteHelp = fmt.Sprintf("Azurite not found: install it with `npm install --prefix %s azurite@%s` (.ci/run does), or set %s to an azurite-blob executable, to run the Azure Blob Storage tests", "~/.cache/mlbuild/azurite-"+AzuriteVersion, AzuriteVersion, EnvAzurite)

// Azurite is an Azurite blob service started by a test, on loopback.
type Azurite struct {
	// Host is host:port of the blob service; its URLs are path-style,
	// http://Host/devstoreaccount1/<container>.
	Host string
	proc *process
	out  *strings.Builder
}

// StartAzurite starts Azurite's blob service on a free loopback port with
// its data in a temporary directory, and stops it when the test ends. It
// skips the test when Azurite is not installed.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin := AzuriteBinary()
	if bin == "" {
		t.Skip(azuriteHelp)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		// The free port may be taken by the time Azurite binds it.
		a, err := tryStartAzurite(bin, t.TempDir())
		if err == nil {
			t.Cleanup(a.Stop)
			return a
		}
		lastErr = err
	}
	t.Fatalf("start Azurite: %v", lastErr)
	return nil
}

func tryStartAzurite(bin, dir string) (*Azurite, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--location", dir, "--silent", "--skipApiVersionCheck", "--disableTelemetry")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	proc, err := startProcess(cmd)
	if err != nil {
		return nil, err
	}
	a := &Azurite{Host: fmt.Sprintf("127.0.0.1:%d", port), proc: proc, out: out}
	err = proc.waitReady(30*time.Second, 50*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", a.Host, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	}, a.kill)
	if errors.Is(err, errExited) {
		return nil, fmt.Errorf("azurite-blob exited: %s", out.String())
	}
	if err != nil {
		return nil, fmt.Errorf("azurite-blob on %s: %w", a.Host, err)
	}
	return a, nil
}

// Stop kills Azurite (its process group: the node process the script
// starts) and waits for it to end.
func (a *Azurite) Stop() { a.proc.stop(a.kill) }

func (a *Azurite) kill() { _ = syscall.Kill(-a.proc.cmd.Process.Pid, syscall.SIGKILL) }
