// Package sandbox runs a program in a folder of its own, isolated by the
// Linux kernel's namespaces through bubblewrap (bwrap, Debian's package
// bubblewrap): the program sees the system's read-only directories, its
// folder at Root (writable) and the files it is given (read-only), and
// nothing else of the machine's files; it has no network unless asked for,
// its own process tree, and it dies with the process that started it.
//
//	spec := sandbox.Spec{Dir: work, ReadOnly: []sandbox.Mount{{Source: data, Target: sandbox.Root + "/in/data"}}}
//	if err := sandbox.Check(); err != nil {
//		return err // says what is missing and how to get it
//	}
//	bwrap, args, err := spec.Command([]string{"python3", "count.py"})
//	cmd := exec.Command(bwrap, args...)
//
// Why bubblewrap: setting up mounts in a new mount namespace must happen in
// the child between clone and exec, which Go's os/exec cannot run code in;
// doing it by hand means re-executing mlbuild as an init process. bwrap is
// a small, audited program (Flatpak's sandbox) that does exactly that,
// works without privileges where the kernel allows unprivileged user
// namespaces, reaps the sandbox's processes as its PID 1 and kills them
// all when its parent dies.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Root is where the program's folder appears inside the sandbox. It is
// the same on every machine, so a program that writes its own paths into
// its outputs writes the same bytes everywhere.
const Root = "/mlbuild"

// ErrUnavailable is wrapped by Check's error when this machine cannot make
// a sandbox (bubblewrap missing, or namespaces not permitted).
var ErrUnavailable = errors.New("sandbox: unavailable")

// SystemDirs are the host directories a sandboxed program sees,
// read-only: the programs, libraries and configuration of the system. A
// directory the host lacks is left out; one that is a symbolic link on the
// host (/bin -> usr/bin on a merged-/usr system) is the same link inside.
var SystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

// Mount makes a host file or directory visible inside the sandbox,
// read-only.
type Mount struct {
	// Source is the host path (a symbolic link is followed).
	Source string
	// Target is the absolute path inside the sandbox.
	Target string
}

// Spec is one sandbox.
type Spec struct {
	// Dir is the host folder that appears, writable, at Root.
	Dir string
	// ReadOnly are the files and directories mounted read-only, in order
	// (a target inside Root is mounted over Dir's contents).
	ReadOnly []Mount
	// Sealed are folders inside the sandbox that start empty (a fresh
	// tmpfs, whatever Dir holds there), receive the ReadOnly mounts that
	// fall inside them, and are then made read-only: a program cannot add
	// files to its inputs' folder.
	Sealed []string
	// Network shares the host's network; without it the program has only
	// a loopback interface of its own.
	Network bool
	// Devices are host device files (or folders of them) made visible at
	// the same paths, beside the minimal /dev every sandbox has: a GPU's
	// (GPUDevices) for a program that needs one.
	Devices []string
}

// GPUDevices lists this machine's GPU device files: NVIDIA's
// (/dev/nvidia*, /dev/nvidia-caps) and the DRM render nodes (/dev/dri).
func GPUDevices() []string {
	devs, _ := filepath.Glob("/dev/nvidia*")
	if _, err := os.Stat("/dev/dri"); err == nil {
		devs = append(devs, "/dev/dri")
	}
	return devs
}

// Command returns the bubblewrap program and the arguments that run argv
// inside the sandbox, in Root, with the environment bwrap itself is given
// (set exec.Cmd.Env to exactly what the program may see: values on bwrap's
// command line would be visible to every user of the machine).
func (s Spec) Command(argv []string) (string, []string, error) {
	if len(argv) == 0 {
		return "", nil, errors.New("sandbox: no program to run")
	}
	if !filepath.IsAbs(s.Dir) {
		return "", nil, fmt.Errorf("sandbox: folder %q is not an absolute path", s.Dir)
	}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return "", nil, fmt.Errorf("%w: bubblewrap (bwrap) is not installed: %v", ErrUnavailable, err)
	}
	args := []string{
		"--unshare-all",
		"--die-with-parent",
		"--new-session",
		"--hostname", "mlbuild",
	}
	if s.Network {
		args = append(args, "--share-net")
	}
	for _, d := range SystemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return "", nil, fmt.Errorf("sandbox: read link %s: %w", d, err)
			}
			args = append(args, "--symlink", target, d)
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	args = append(args,
		"--proc", "/proc",
		"--dev", "/dev",
	)
	for _, d := range s.Devices {
		args = append(args, "--dev-bind-try", d, d)
	}
	args = append(args,
		"--tmpfs", "/tmp",
		"--bind", s.Dir, Root,
	)
	for _, d := range s.Sealed {
		args = append(args, "--tmpfs", d)
	}
	for _, m := range s.ReadOnly {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
			return "", nil, fmt.Errorf("sandbox: mount %s at %s: both paths must be absolute", m.Source, m.Target)
		}
		args = append(args, "--ro-bind", m.Source, m.Target)
	}
	for _, d := range s.Sealed {
		args = append(args, "--remount-ro", d)
	}
	args = append(args, "--chdir", Root, "--")
	return bwrap, append(args, argv...), nil
}

var (
	checkOnce sync.Once
	checkErr  error
)

// Check reports whether this machine can make sandboxes: bubblewrap is
// installed and the kernel lets it make namespaces. It tries once per
// process; the error wraps ErrUnavailable and says how to fix it.
func Check() error {
	checkOnce.Do(func() { checkErr = probe() })
	return checkErr
}

func probe() error {
	dir, err := os.MkdirTemp("", "mlbuild-sandbox-probe-")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer os.RemoveAll(dir)
	bwrap, args, err := Spec{Dir: dir}.Command([]string{"true"})
	if err != nil {
		return fmt.Errorf("%w (install Debian's package bubblewrap: apt-get install bubblewrap)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bwrap, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%w: bubblewrap cannot make namespaces here (%s); unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or user.max_user_namespaces > 0), or a container forbids them", ErrUnavailable, msg)
	}
	return nil
}

// Visible reports whether a host path is inside the directories a
// sandboxed program sees (SystemDirs, with symbolic links followed).
func Visible(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	for _, d := range SystemDirs {
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if real == rd || strings.HasPrefix(real, rd+"/") {
			return true
		}
	}
	return false
}
