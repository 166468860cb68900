package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mlbuild/mlbuild/cache/remote/remotetest"
)

// row is one line of the results table.
type row struct {
	benchmark, mlbuild, peer, ratio, target, met string
}

func renderTable(rows []row) string {
	var b strings.Builder
	b.WriteString("| benchmark | mlbuild | peer | ratio | target | met? |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.benchmark, r.mlbuild, r.peer, r.ratio, r.target, r.met)
	}
	return b.String()
}

// samples are the wall times of repeated runs.
type samples []time.Duration

func (s samples) min() time.Duration { return slices.Min(s) }

func (s samples) median() time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	if n := len(c); n%2 == 0 {
		return (c[n/2-1] + c[n/2]) / 2
	}
	return c[len(c)/2]
}

// String is "median X (min Y)".
func (s samples) String() string {
	return fmt.Sprintf("median %s (min %s)", dur(s.median()), dur(s.min()))
}

func dur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// machine describes where the numbers were measured.
type machine struct {
	cpus                    int
	cpu, mem, goVer         string
	ninja, sha256sum, uname string
	nginx, curl             string // filled in by the remote benchmarks
}

func describeMachine() machine {
	m := machine{cpus: runtime.NumCPU(), cpu: "unknown", mem: "unknown", goVer: runtime.Version()}
	m.cpu = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		if _, err := fmt.Sscanf(kb, "%d", &n); err == nil {
			m.mem = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
		}
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.goVer = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	m.ninja = firstLine("ninja", "--version")
	m.sha256sum = firstLine("sha256sum", "--version")
	m.uname = firstLine("uname", "-sr")
	return m
}

func (m machine) markdown() string {
	return fmt.Sprintf("Machine: %d CPUs (nproc), %s, %s RAM, %s; %s; ninja %s; %s; %s; %s.\n",
		m.cpus, m.cpu, m.mem, m.uname, m.goVer, orNone(m.ninja), orNone(m.sha256sum), orNone(m.nginx), orNone(m.curl))
}

func orNone(s string) string {
	if s == "" {
		return "(not installed)"
	}
	return s
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read-only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// nginxVersion is what `nginx -v` prints (on stderr), e.g. "nginx/1.22.1".
func nginxVersion() string {
	out, err := exec.Command(remotetest.NginxBinary(), "-v").CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimPrefix(strings.TrimSpace(line), "nginx version: ")
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// loadavg is /proc/loadavg's 1, 5 and 15 minute load averages: other work
// on the machine shows in the timings.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
