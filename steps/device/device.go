// Package device is the device setting of the step kinds that compute
// (pretrain, qlora_train, merge, eval): the `device` attribute, its
// validation, and opening the backend it names through tensor.OpenDevice,
// reporting the device used to the engine for the step's provenance.
//
// The device is not in the step's key (docs/gpu.md, "Devices and cache
// keys"): a key names what to build, whichever device builds it, and the
// provenance records the device that did.
package device

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/steps"
)

// Name is the attribute's name.
const Name = "device"

// Attribute is the `device` attribute: "auto" by default, out of the key.
func Attribute() steps.Attribute {
	return steps.Attribute{
		Name: Name, Type: cty.String, Default: cty.StringVal(tensor.DeviceAuto), NotInKey: true,
		Doc: `Where to compute: "auto" (a CUDA GPU when one can be used, else the CPU, saying why in the log), "cpu", "cuda" or "cuda:N". ` +
			`Not in the key; the device used is recorded in the step's provenance. The CUDA backend has not yet been verified on a GPU, so "auto" computes on the CPU (saying why) and "cuda" opts in.`,
	}
}

// Validate checks a device name at load time, as an error at the attribute.
func Validate(name string) error {
	if _, err := tensor.ParseDevice(name); err != nil {
		return &steps.AttrError{Attr: Name, Msg: err.Error()}
	}
	return nil
}

// Open returns the backend name selects, with threads CPU workers (0: all)
// for the CPU. It reports the device to the engine; when "auto" falls back
// to the CPU it logs why, in one line, through the step's logger; a
// device that cannot be used is an error at the attribute.
func Open(inv *steps.Invocation, name string, threads int) (tensor.Backend, error) {
	be, dev, err := tensor.OpenDevice(name, tensor.DeviceOptions{Threads: threads})
	if err != nil {
		return nil, &steps.AttrError{Attr: Name, Msg: err.Error()}
	}
	if dev.Fallback != "" {
		inv.Logger().Info("device auto: computing on the CPU", "reason", dev.Fallback)
	}
	inv.ReportDevice(dev.Name)
	return be, nil
}
