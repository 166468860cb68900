package remotetest

import (
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// process is a server a test started: done is closed when it exits.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess starts cmd and watches for its exit.
func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// errExited says that the server exited before it was ready.
var errExited = errors.New("exited")

// waitReady polls ready every poll until it succeeds, the process exits
// (errExited) or timeout passes (the last error of ready); in both failures
// the process is stopped with kill.
func (p *process) waitReady(timeout, poll time.Duration, ready func() error, kill func()) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return errExited
		default:
		}
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.stop(kill)
			return fmt.Errorf("not ready within %s: %w", timeout, err)
		}
		time.Sleep(poll)
	}
}

// stop ends the process with kill, unless it has exited, and waits for it.
func (p *process) stop(kill func()) {
	select {
	case <-p.done:
		return
	default:
	}
	kill()
	<-p.done
}
