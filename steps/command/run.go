package command

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/sandbox"
	"github.com/mlbuild/mlbuild/steps"
)

// tailLines is how many of the last lines of stderr a failure shows.
const tailLines = 20

// maxLine caps one streamed line; a longer one is streamed in pieces.
const maxLine = 64 << 10

// lookupEnv reads mlbuild's environment for pass_env, and checkSandbox
// says whether sandboxes can be made (tests replace them).
var (
	lookupEnv    = os.LookupEnv
	checkSandbox = sandbox.Check
)

// folder is the command's own folder: work on the host, seen by the
// command at root (sandbox.Root when sandboxed, work itself otherwise).
type folder struct {
	work, root string
}

func (f folder) in() string  { return filepath.Join(f.root, "in") }
func (f folder) out() string { return filepath.Join(f.root, "out") }

// run stages the inputs, runs the command, streams and keeps its output,
// checks what it wrote and moves the declared outputs into inv.OutDir.
func run(ctx context.Context, inv *steps.Invocation, c *config) error {
	work := filepath.Join(inv.TempDir, "work")
	for _, d := range []string{"in", "out", "home"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return fmt.Errorf("create the command's folder: %w", err)
		}
	}
	f := folder{work: work, root: work}
	if c.Sandbox {
		f.root = sandbox.Root
	}
	env, secrets, err := environment(c, f)
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	if c.Sandbox {
		cmd, err = sandboxed(inv, c, f)
	} else {
		cmd, err = direct(inv, c, f, env)
	}
	if err != nil {
		return err
	}
	cmd.Env = env
	cmd.Stdin = nil // /dev/null

	limit, _ := timeout(c.Timeout)
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if limit > 0 {
		runCtx, cancel = context.WithTimeout(ctx, limit)
	}
	defer cancel()
	if err := execute(runCtx, inv, cmd, secrets); err != nil {
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("interrupted: %w", ctx.Err())
		case runCtx.Err() != nil:
			tail := ""
			var f *failure
			if errors.As(err, &f) {
				tail = f.tail()
			}
			return &steps.AttrError{Attr: "timeout", Msg: fmt.Sprintf("the command ran past its timeout of %s and was killed%s", limit, tail)}
		}
		return err
	}
	return collect(inv, c, f)
}

// environment is exactly what the command sees: PATH, HOME, the two
// folders, env and pass_env, sorted. secrets are pass_env's values, kept
// out of everything written.
func environment(c *config, f folder) (env, secrets []string, err error) {
	vars := map[string]string{
		"PATH": DefaultPath,
		"HOME": filepath.Join(f.root, "home"),
		EnvIn:  f.in(),
		EnvOut: f.out(),
	}
	for k, v := range c.Env {
		vars[k] = v
	}
	for _, k := range c.PassEnv {
		v, ok := lookupEnv(k)
		if !ok {
			return nil, nil, &steps.AttrError{Attr: "pass_env", Msg: fmt.Sprintf("%s is not set in mlbuild's environment; set it (export %s=...) or remove it from pass_env", k, k)}
		}
		vars[k] = v
		if len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, secrets, nil
}

// sandboxed is the command inside a bubblewrap sandbox: the folder at
// sandbox.Root, each input mounted read-only at in/NAME.
func sandboxed(inv *steps.Invocation, c *config, f folder) (*exec.Cmd, error) {
	if err := checkSandbox(); err != nil {
		return nil, &steps.AttrError{Attr: "sandbox", Msg: fmt.Sprintf("cannot isolate the command: %v; or set sandbox = false to run it without isolation", err)}
	}
	for _, t := range inv.Inputs["tools"] {
		if !sandbox.Visible(t.Path) {
			return nil, &steps.AttrError{Attr: "tools", Msg: fmt.Sprintf("tool %s is %s, which the sandbox does not show (it shows %s); install it there, or set sandbox = false", t.Name, t.Path, strings.Join(sandbox.SystemDirs, ", "))}
		}
	}
	spec := sandbox.Spec{Dir: f.work, Network: c.Network, Sealed: []string{f.in()}}
	if res, _ := resources(c.Resources); res.GPUs > 0 {
		// A step that asks for GPUs sees the machine's GPU devices (the
		// driver's libraries are under /usr, which it sees anyway).
		spec.Devices = sandbox.GPUDevices()
	}
	for _, in := range inv.Inputs["inputs"] {
		spec.ReadOnly = append(spec.ReadOnly, sandbox.Mount{Source: in.Path, Target: filepath.Join(f.in(), in.Key)})
		if topLevel(in.Key) {
			spec.ReadOnly = append(spec.ReadOnly, sandbox.Mount{Source: in.Path, Target: filepath.Join(f.root, in.Key)})
		}
	}
	bwrap, args, err := spec.Command(c.Run)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bwrap, args...)
	cmd.Dir = f.work
	return cmd, nil
}

// direct is the command run without isolation, in its folder, with each
// input a symbolic link at in/NAME.
func direct(inv *steps.Invocation, c *config, f folder, env []string) (*exec.Cmd, error) {
	for _, in := range inv.Inputs["inputs"] {
		links := []string{filepath.Join(f.in(), in.Key)}
		if topLevel(in.Key) {
			links = append(links, filepath.Join(f.root, in.Key))
		}
		for _, l := range links {
			if err := os.Symlink(in.Path, l); err != nil {
				return nil, fmt.Errorf("stage input %s: %w", in.Key, err)
			}
		}
	}
	prog := c.Run[0]
	if !strings.Contains(prog, "/") {
		pathList := DefaultPath
		for _, kv := range env {
			if p, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathList = p
			}
		}
		p, err := lookPath(prog, pathList)
		if err != nil {
			return nil, &steps.AttrError{Attr: "run", Msg: err.Error()}
		}
		prog = p
	}
	cmd := exec.Command(prog, c.Run[1:]...)
	cmd.Args[0] = c.Run[0]
	cmd.Dir = f.work
	return cmd, nil
}

// topLevel reports whether an input is also visible in the command's
// folder itself (./count.py as well as in/count.py), which every name but
// the folder's own in, out and home is.
func topLevel(name string) bool {
	return name != "in" && name != "out" && name != "home"
}

// failure is a command that did not succeed, with the end of its stderr.
type failure struct {
	msg  string
	last []string
	log  string
}

func (e *failure) Error() string { return e.msg + e.tail() }

func (e *failure) tail() string {
	var b strings.Builder
	if len(e.last) > 0 {
		fmt.Fprintf(&b, "; the last lines of its stderr:\n")
		for _, l := range e.last {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	if e.log != "" {
		if len(e.last) == 0 {
			b.WriteString("; ")
		} else {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "full output: %s", e.log)
	}
	return strings.TrimRight(b.String(), "\n")
}

// execute starts cmd in a process group of its own, streams its stdout
// and stderr line by line to the engine and into the step's log folder,
// and waits. When ctx ends, the whole group is killed (a sandbox's
// processes die with it).
func execute(ctx context.Context, inv *steps.Invocation, cmd *exec.Cmd, secrets []string) (err error) {
	logDir := inv.LogDir
	if logDir == "" {
		logDir = inv.TempDir
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create the step's log folder: %w", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = waitGrace
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	redact := redactor(secrets)
	outLog, err := os.Create(filepath.Join(logDir, "stdout.log"))
	if err != nil {
		return fmt.Errorf("create the step's log: %w", err)
	}
	errLog, err := os.Create(filepath.Join(logDir, "stderr.log"))
	if err != nil {
		_ = outLog.Close()
		return fmt.Errorf("create the step's log: %w", err)
	}
	// The logs are closed (and a failure to write them reported) once the
	// command has ended.
	defer func() {
		for _, f := range []*os.File{outLog, errLog} {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("write the step's log: %w", cerr)
			}
		}
	}()

	// Pdeathsig is sent when the thread that started the child exits, so
	// the start happens on a thread that stays while the child lives.
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- waitStreams(cmd, inv, stdout, stderr, outLog, errLog, redact)
	}()
	if err := <-started; err != nil {
		return &failure{msg: fmt.Sprintf("cannot start %s: %v", cmd.Args[0], err)}
	}
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		werr = <-waited
	}
	last := lastLines(errLog.Name(), tailLines)
	logName := errLog.Name()
	if inv.LogDir == "" {
		logName = ""
	}
	if werr == nil && ctx.Err() == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &failure{msg: "killed", last: last, log: logName}
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &failure{msg: fmt.Sprintf("%s was killed by signal %d (%s)", cmdName(cmd), ws.Signal(), ws.Signal()), last: last, log: logName}
		}
		return &failure{msg: fmt.Sprintf("%s exited with status %d", cmdName(cmd), ee.ExitCode()), last: last, log: logName}
	}
	return &failure{msg: fmt.Sprintf("%s: %v", cmdName(cmd), werr), last: last, log: logName}
}

// cmdName is the program as the user wrote it (bwrap's arguments end with
// the user's argv after "--").
func cmdName(cmd *exec.Cmd) string {
	for i, a := range cmd.Args {
		if a == "--" && i+1 < len(cmd.Args) {
			return cmd.Args[i+1]
		}
	}
	return cmd.Args[0]
}

// waitStreams copies both streams until they close, then waits for the
// process.
func waitStreams(cmd *exec.Cmd, inv *steps.Invocation, stdout, stderr io.Reader, outLog, errLog io.Writer, redact func(string) string) error {
	var wg sync.WaitGroup
	stream := func(name string, r io.Reader, log io.Writer) {
		defer wg.Done()
		br := bufio.NewReaderSize(r, maxLine)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				text := redact(string(line))
				_, _ = io.WriteString(log, text)
				inv.PrintOutput(name, strings.TrimRight(text, "\r\n"))
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}
	wg.Add(2)
	go stream("stdout", stdout, outLog)
	go stream("stderr", stderr, errLog)
	wg.Wait()
	return cmd.Wait()
}

// redactor replaces each secret in a line with "***".
func redactor(secrets []string) func(string) string {
	if len(secrets) == 0 {
		return func(s string) string { return s }
	}
	var pairs []string
	for _, s := range secrets {
		pairs = append(pairs, s, "***")
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// lastLines is the last n lines of a file.
func lastLines(name string, n int) []string {
	b, err := os.ReadFile(name)
	if err != nil || len(b) == 0 {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// collect checks that the command wrote every declared output and nothing
// else under out/, and moves the outputs into the engine's output folder.
func collect(inv *steps.Invocation, c *config, f folder) error {
	outs, err := Kind{}.DeclareOutputs(mapValue(c.Outputs))
	if err != nil {
		return &steps.AttrError{Attr: "outputs", Msg: err.Error()}
	}
	out := filepath.Join(f.work, "out")
	declared := map[string]steps.Output{}
	parents := map[string]bool{}
	for _, o := range outs {
		declared[o.Path] = o
		for d := filepath.Dir(o.Path); d != "."; d = filepath.Dir(d) {
			parents[d] = true
		}
		fi, err := os.Lstat(filepath.Join(out, filepath.FromSlash(o.Path)))
		switch {
		case err != nil:
			return &steps.AttrError{Attr: "outputs", Msg: fmt.Sprintf("the command succeeded but did not write its declared output %q (out/%s)", o.Name, o.Path)}
		case fi.Mode()&fs.ModeSymlink != 0:
			return &steps.AttrError{Attr: "outputs", Msg: fmt.Sprintf("output %q (out/%s) is a symbolic link; write the file itself", o.Name, o.Path)}
		case o.Dir && !fi.IsDir():
			return &steps.AttrError{Attr: "outputs", Msg: fmt.Sprintf("output %q (out/%s) is declared a folder (its path ends in /) but the command wrote a file", o.Name, o.Path)}
		case !o.Dir && !fi.Mode().IsRegular():
			return &steps.AttrError{Attr: "outputs", Msg: fmt.Sprintf("output %q (out/%s) is not a regular file; if it is a folder, end its path with / in outputs", o.Name, o.Path)}
		}
	}
	var undeclared []string
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if o, ok := declared[rel]; ok {
			if o.Dir {
				if err := checkTree(p, rel); err != nil {
					return err
				}
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() && parents[rel] {
			return nil
		}
		undeclared = append(undeclared, "out/"+rel)
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(undeclared) > 0 {
		more := ""
		if len(undeclared) > 5 {
			more = fmt.Sprintf(" and %d more", len(undeclared)-5)
			undeclared = undeclared[:5]
		}
		return &steps.AttrError{Attr: "outputs", Msg: fmt.Sprintf("the command left undeclared files in out/: %s%s; declare them in outputs, or write scratch files elsewhere (/tmp)", strings.Join(undeclared, ", "), more)}
	}
	for _, o := range outs {
		dst := filepath.Join(inv.OutDir, filepath.FromSlash(o.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(out, filepath.FromSlash(o.Path)), dst); err != nil {
			return fmt.Errorf("move output %q into place: %w", o.Name, err)
		}
	}
	return nil
}

// checkTree refuses symbolic links and special files inside a folder
// output.
func checkTree(root, rel string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Type().IsRegular() {
			return nil
		}
		r, _ := filepath.Rel(root, p)
		return &steps.AttrError{Attr: "outputs", Msg: fmt.Sprintf("out/%s/%s is not a regular file or folder (a symbolic link?); outputs hold files and folders only", rel, filepath.ToSlash(r))}
	})
}

// waitGrace bounds how long Wait waits for the output pipes after the
// process has exited (a background child holding them open).
const waitGrace = 5 * time.Second

// mapValue is m as a cty map of strings.
func mapValue(m map[string]string) cty.Value {
	if len(m) == 0 {
		return cty.MapValEmpty(cty.String)
	}
	vals := make(map[string]cty.Value, len(m))
	for k, v := range m {
		vals[k] = cty.StringVal(v)
	}
	return cty.MapVal(vals)
}
