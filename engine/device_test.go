package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

// deviceKind reports the device its "device" attribute names, as the
// training kinds report the device tensor.OpenDevice gave them.
type deviceKind struct{}

func (deviceKind) Schema() steps.Schema {
	return steps.Schema{Kind: "on_device", Version: "1", Attributes: []steps.Attribute{
		{Name: "device", Type: cty.String, Default: cty.StringVal(""), NotInKey: true},
		{Name: "tag", Type: cty.String, Default: cty.StringVal("")},
	}, Outputs: []steps.Output{{Name: "output", Path: "out.txt"}}}
}

func (deviceKind) Run(_ context.Context, inv *steps.Invocation) error {
	var c struct {
		Device string `attr:"device"`
	}
	if err := inv.Decode(&c); err != nil {
		return err
	}
	if c.Device != "" {
		inv.ReportDevice(c.Device)
	}
	return os.WriteFile(filepath.Join(inv.OutDir, "out.txt"), []byte("x"), 0o644)
}

// TestProvenanceRecordsReportedDevice: the device a step reports is its
// provenance's; a step that reports none ran on the CPU.
func TestProvenanceRecordsReportedDevice(t *testing.T) {
	env := newEnv(t, `
step "on_device" "gpu" {
  device = "cuda:7"
}
step "on_device" "host" {
  tag = "host" # the same key as on_device.gpu's otherwise: the device is not in it
}
`)
	env.reg.Register(deviceKind{})
	if res := env.run(Options{}); res.err != nil {
		t.Fatal(res.err)
	}
	p, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), p, Options{Workspace: env.dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, e)
	for addr, want := range map[string]string{"on_device.gpu": "cuda:7", "on_device.host": "cpu"} {
		info, err := e.Show(addr)
		if err != nil {
			t.Fatal(err)
		}
		if info.Provenance.Device != want {
			t.Errorf("%s: provenance device %q, want %q", addr, info.Provenance.Device, want)
		}
	}
}
