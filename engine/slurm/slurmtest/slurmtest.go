// Package slurmtest starts a real one-node Slurm cluster on loopback for
// tests, from Debian's packages (munge, slurmctld, slurmd, the Slurm
// clients): its own munge socket and key, its own ports, state and spool
// folders in a temporary folder, no cgroups (proctrack/linuxproc,
// task/none), two CPUs, and one GPU counted as a license (Licenses=gpu:1),
// so that tests can check that two GPU steps never share it.
package slurmtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a running test cluster.
type Cluster struct {
	// Dir holds its configuration, state and logs.
	Dir string
	// Conf is its slurm.conf; clients find it through SLURM_CONF.
	Conf  string
	procs []*exec.Cmd
}

// ErrUnavailable says why no cluster can be started here.
var ErrUnavailable = errors.New("slurmtest: no Slurm here")

// Available reports whether a cluster can be started: the daemons and
// clients are installed and the process is root (slurmd starts jobs as
// their user).
func Available() error {
	for _, p := range []string{"munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel"} {
		if _, err := exec.LookPath(p); err != nil {
			if _, err := os.Stat("/usr/sbin/" + p); err != nil {
				return fmt.Errorf("%w: %s is not installed (apt-get install slurm-wlm munge; .ci/run does)", ErrUnavailable, p)
			}
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: slurmd must run as root to start jobs", ErrUnavailable)
	}
	return nil
}

// Require skips the test where no cluster can be started, and fails it in
// CI (CI set), whose set-up installs Slurm.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run the Slurm tests: %v", err)
		}
		t.Skip(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}

func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// Start starts munged, slurmctld and slurmd in dir and waits until the
// node is idle. Stop ends them.
func Start(dir string) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Conf: filepath.Join(dir, "slurm.conf")}
	for _, d := range []string{"state", "spool", "munge"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 1024)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "munge", "munge.key")
	if err := os.WriteFile(keyFile, key, 0o400); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "munge", "munge.sock")
	munged := exec.Command(sbin("munged"), "--foreground", "--force", "--socket="+sock, "--key-file="+keyFile,
		"--pid-file="+filepath.Join(dir, "munge", "munged.pid"), "--log-file="+filepath.Join(dir, "munge", "munged.log"),
		"--seed-file="+filepath.Join(dir, "munge", "munged.seed"))
	if err := c.start(munged); err != nil {
		return nil, err
	}
	if err := waitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
		c.Stop()
		return nil, fmt.Errorf("munged did not start: %w", err)
	}
	ctlPort, err := freePort()
	if err != nil {
		c.Stop()
		return nil, err
	}
	dPort, err := freePort()
	if err != nil {
		c.Stop()
		return nil, err
	}
	conf := fmt.Sprintf(`ClusterName=mlbuildtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=%s
CredType=cred/munge
StateSaveLocation=%s
SlurmdSpoolDir=%s
SlurmctldPidFile=%s
SlurmdPidFile=%s
SlurmctldLogFile=%s
SlurmdLogFile=%s
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
MpiDefault=none
MinJobAge=3600
DefMemPerCPU=1000
KillWait=2
MessageTimeout=20
InactiveLimit=0
Licenses=gpu:1
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
`, ctlPort, dPort, sock, filepath.Join(dir, "state"), filepath.Join(dir, "spool"),
		filepath.Join(dir, "slurmctld.pid"), filepath.Join(dir, "slurmd.pid"),
		filepath.Join(dir, "slurmctld.log"), filepath.Join(dir, "slurmd.log"))
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.start(exec.Command(sbin("slurmctld"), "-D", "-i", "-f", c.Conf)); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.start(exec.Command(sbin("slurmd"), "-D", "-N", "localhost", "-f", c.Conf)); err != nil {
		c.Stop()
		return nil, err
	}
	err = waitFor(60*time.Second, func() bool {
		out, err := c.Command("sinfo", "-h", "-o", "%T").Output()
		return err == nil && strings.TrimSpace(string(out)) == "idle"
	})
	if err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "slurmd.log"))
		ctl, _ := os.ReadFile(filepath.Join(dir, "slurmctld.log"))
		c.Stop()
		return nil, fmt.Errorf("the node did not become idle: %w\nslurmctld.log:\n%s\nslurmd.log:\n%s", err, lastLines(ctl), lastLines(logs))
	}
	return c, nil
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) start(cmd *exec.Cmd) error {
	cmd.Env = c.Env()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

// Env is the environment for the cluster's clients: os.Environ with
// SLURM_CONF set.
func (c *Cluster) Env() []string {
	return append(os.Environ(), "SLURM_CONF="+c.Conf)
}

// Command is a client command (sbatch, squeue, scontrol) of this cluster.
func (c *Cluster) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(context.Background(), name, args...)
	cmd.Env = c.Env()
	return cmd
}

// Stop ends the daemons, newest first.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
}

func waitFor(limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

var (
	sharedMu sync.Mutex
	shared   *Cluster
)

// Shared returns the test binary's cluster, starting it on first use (it
// skips or, in CI, fails the test where none can start), and points the
// Slurm clients at it (SLURM_CONF, for the test). The test binary's
// TestMain calls StopShared.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	Require(t)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		dir, err := os.MkdirTemp("", "slurmtest-")
		if err != nil {
			t.Fatal(err)
		}
		if shared, err = Start(dir); err != nil {
			_ = os.RemoveAll(dir)
			t.Fatal(err)
		}
	}
	t.Setenv("SLURM_CONF", shared.Conf)
	return shared
}

// StopShared stops the shared cluster, if one was started, and removes
// its folder.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		_ = os.RemoveAll(shared.Dir)
		shared = nil
	}
}

// Jobs lists the cluster's jobs (completed ones too, for MinJobAge): name
// and state by job ID.
func (c *Cluster) Jobs() (map[string][2]string, error) {
	out, err := c.Command("scontrol", "show", "job", "-o").Output()
	if err != nil {
		return nil, fmt.Errorf("scontrol show job: %w", err)
	}
	jobs := map[string][2]string{}
	for _, line := range strings.Split(string(out), "\n") {
		var id, name, state string
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "JobId":
				id = v
			case "JobName":
				name = v
			case "JobState":
				state = v
			}
		}
		if id != "" {
			jobs[id] = [2]string{name, state}
		}
	}
	return jobs, nil
}
