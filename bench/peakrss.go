package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// A child's peak RSS as getrusage reports it is not its own on Linux: Go
// starts a child with clone(CLONE_VM|CLONE_VFORK), and exec folds the
// high-water mark of the memory the child still shares with its parent into
// the child's ru_maxrss. A bench process that has written a 600 MB model
// would report every child it then starts at 600 MB or more. So each
// measured child is started by a fresh, small copy of this binary
// (-peakrss), whose own memory is what its child inherits, and which hands
// back the child's ru_maxrss in a file.

// peakRSSCommand returns the command that runs name with args under the
// -peakrss helper; peakRSS reads the result after it has run.
func peakRSSCommand(name string, args ...string) (*exec.Cmd, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	f, err := os.CreateTemp("", "mlbuild-bench-rss")
	if err != nil {
		return nil, "", err
	}
	if err := f.Close(); err != nil {
		return nil, "", err
	}
	return exec.Command(self, append([]string{"-peakrss", f.Name(), "--", name}, args...)...), f.Name(), nil
}

// peakRSS reads (and removes) the peak RSS, in bytes, that the -peakrss
// helper wrote to file.
func peakRSS(file string) (int64, error) {
	defer os.Remove(file)
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("peak RSS file %s: %w", file, err)
	}
	return v, nil
}

// peakRSSHelper is -peakrss FILE -- CMD ARGS...: it runs CMD with this
// process's standard streams and environment, writes its ru_maxrss in bytes
// to FILE and exits with its exit status.
func peakRSSHelper(file string, argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "bench -peakrss: no command")
		return 2
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintln(os.Stderr, "bench -peakrss:", err)
		return 1
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		if werr := os.WriteFile(file, []byte(strconv.FormatInt(ru.Maxrss*1024, 10)), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "bench -peakrss:", werr)
			return 1
		}
	}
	return cmd.ProcessState.ExitCode()
}
