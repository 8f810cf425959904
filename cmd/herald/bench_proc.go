package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

// resetPeakRSS resets this process's VmHWM to its current RSS (Linux 4.0+).
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// procStatusKB reads a kB field such as VmHWM from /proc/self/status (0
// where it cannot).
func procStatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

func peakRSSText(kb int64) string {
	if kb == 0 {
		return "unknown (no /proc/self/status)"
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

func hwmNote(reset bool, baseKB int64) string {
	if !reset {
		return " (VmHWM could not be reset after seeding, so this includes the seeding)"
	}
	return fmt.Sprintf(" (VmHWM, reset after seeding when RSS was %.1f MB)", float64(baseKB)/1024)
}

func passFail(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(f)
}

// writeAllocsProfile writes the profile of every allocation since start.
func writeAllocsProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}
