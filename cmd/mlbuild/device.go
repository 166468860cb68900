package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// deviceSetting is the --device flag of generate and chat.
type deviceSetting struct{ name *string }

func deviceFlag(fs *flag.FlagSet) deviceSetting {
	return deviceSetting{fs.String("device", tensor.DeviceAuto, `where to compute: "auto" (a CUDA GPU when one can be used, else the CPU), "cpu", "cuda" or "cuda:N"`)}
}

// open returns a function that opens the backend the flag names. When an
// explicit --device auto falls back to the CPU it says why on stderr, in
// one line; the default says nothing.
func (d deviceSetting) open(fs *flag.FlagSet, stderr io.Writer) func() (tensor.Backend, error) {
	return func() (tensor.Backend, error) {
		be, dev, err := tensor.OpenDevice(*d.name, tensor.DeviceOptions{})
		if err != nil {
			return nil, fmt.Errorf("--device: %w", err)
		}
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "device" })
		if dev.Fallback != "" && set {
			fmt.Fprintf(stderr, "%s: device auto: computing on the CPU (%s)\n", fs.Name(), dev.Fallback)
		}
		return be, nil
	}
}
