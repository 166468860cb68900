package tensor

import (
	"time"

	"golang.org/x/sys/unix"
)

// cpuTime is the process's CPU time (all threads): on a shared machine it
// counts only the time this process ran, which wall time does not.
func cpuTime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
